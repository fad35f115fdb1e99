"""ACC, BWT, FWT and average forgetting on accuracy matrices computed by hand."""

from __future__ import annotations

import math

import pytest

from nma import average_accuracy, backward_transfer, forgetting, forward_transfer
from nma.continual_metrics import summarize
from nma.continual_record import ContinualRecord

R = [
    [0.9, 0.1, 0.2],
    [0.6, 0.8, 0.3],
    [0.5, 0.7, 0.95],
]
B = [0.1, 0.15, 0.1]


def test_metrics_of_a_hand_made_matrix():
    assert math.isclose(average_accuracy(R), (0.5 + 0.7 + 0.95) / 3)
    assert math.isclose(backward_transfer(R), ((0.5 - 0.9) + (0.7 - 0.8)) / 2)
    assert math.isclose(forward_transfer(R, B), ((0.1 - 0.15) + (0.3 - 0.1)) / 2)
    assert math.isclose(forgetting(R), ((0.9 - 0.5) + (0.8 - 0.7)) / 2)
    assert math.isclose(forgetting(R, k=2), 0.9 - 0.6)
    assert forgetting(R, k=1) == 0.0


def test_forgetting_is_measured_from_the_best_accuracy_not_the_first():
    r = [
        [0.5, 0.2, 0.0],
        [0.8, 0.9, 0.1],
        [0.6, 0.85, 0.7],
    ]
    # BWT compares with the accuracy right after learning: +0.1 and -0.05
    assert math.isclose(backward_transfer(r), (0.1 - 0.05) / 2)
    # forgetting with the best ever: 0.8 - 0.6 and 0.9 - 0.85
    assert math.isclose(forgetting(r), (0.2 + 0.05) / 2)


def test_one_experience_and_bad_shapes():
    assert summarize([[0.7]], [0.1]) == {"acc": 0.7, "bwt": 0.0, "forgetting": 0.0, "fwt": 0.0}
    with pytest.raises(ValueError):
        average_accuracy([[0.1, 0.2]] * 3)
    with pytest.raises(ValueError):
        forward_transfer(R, [0.1])


def test_the_record_summarises_what_is_trained_so_far():
    record = ContinualRecord(names=["a", "b", "c"], initial=B, rows=[list(r) for r in R])
    assert record.complete
    assert record.summary() == summarize(R, B)
    partial = ContinualRecord(names=["a", "b", "c"], initial=B, rows=[list(r) for r in R[:2]])
    assert not partial.complete
    assert math.isclose(partial.summary()["acc"], (0.6 + 0.8) / 2)
    joint = ContinualRecord(names=["a", "b", "c"], joint=True, rows=[[0.9, 0.8, 0.7]])
    assert joint.complete and math.isclose(joint.summary()["acc"], 0.8)
    assert ContinualRecord.from_dict(record.to_dict()) == record
