"""The helpers shared by the binary-sequence tasks."""

from __future__ import annotations

import torch

from nma_tasks.sequences import bit_errors, eval_batch_sizes, ramp


def test_ramp_grows_linearly_then_holds():
    assert [ramp(i, 4, 2, 10) for i in range(7)] == [2, 4, 6, 8, 10, 10, 10]
    assert [ramp(i, 3, 1, 2) for i in range(4)] == [1, 1, 1, 2]
    assert ramp(0, 0, 1, 9) == 9  # no curriculum


def test_eval_batch_sizes_hold_every_sequence_once():
    assert list(eval_batch_sizes(70, 32)) == [32, 32, 6]
    assert list(eval_batch_sizes(5, 32)) == [5]


def test_bit_errors_threshold_logits_at_zero_on_scored_steps():
    targets = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])  # (T=2, B=1, 2)
    outputs = torch.tensor([[[0.1, 0.2]], [[-3.0, -1.0]]])
    assert bit_errors(outputs, targets, torch.ones(2, 1)).tolist() == [2.0]
    assert bit_errors(outputs, targets, torch.tensor([[1.0], [0.0]])).tolist() == [1.0]
