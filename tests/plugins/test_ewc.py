"""EWC and online EWC: the diagonal Fisher and the penalty of a tiny model, by hand."""

from __future__ import annotations

import itertools

import torch

from nma_plugins.regularizers.ewc import EWCRegularizer
from nma_plugins.regularizers.online_ewc import OnlineEWCRegularizer
from tests.plugins.cl_helpers import SquaredErrorTask, TinyModel, one_step_batch

XS = [[1.0, 2.0], [0.5, -1.0], [-2.0, 0.0]]
TS = [1.0, 0.0, 2.0]
W, B0 = [0.3, -0.2], 0.1


def fisher_by_hand(w: list[float], b: float) -> tuple[list[float], float]:
    """F = mean over sequences of (2 (y - t) x)² and (2 (y - t))²."""
    fw, fb = [0.0, 0.0], 0.0
    for (x1, x2), t in zip(XS, TS, strict=True):
        r = 2 * (w[0] * x1 + w[1] * x2 + b - t)
        fw[0] += (r * x1) ** 2 / len(XS)
        fw[1] += (r * x2) ** 2 / len(XS)
        fb += r**2 / len(XS)
    return fw, fb


def make(cls, **options):
    reg = cls(cls.Config(**options))
    reg.bind(SquaredErrorTask())
    return reg


def test_fisher_and_penalty_match_the_hand_computation():
    model = TinyModel(W, B0)
    ewc = make(EWCRegularizer, weight=0.5, samples=3)
    assert ewc.penalty(model) is None
    # two batches: the Fisher must take the first 3 sequences, one at a time
    batches = itertools.repeat(one_step_batch(XS[:2], TS[:2]), 1)
    batches = itertools.chain(batches, [one_step_batch(XS[2:], TS[2:])])
    ewc.end_experience(model, batches)
    fw, fb = fisher_by_hand(W, B0)
    anchor = ewc.anchors[0]
    assert torch.allclose(anchor.importance["linear.weight"], torch.tensor([fw]))
    assert torch.allclose(anchor.importance["linear.bias"], torch.tensor([fb]))
    assert float(ewc.penalty(model).detach()) == 0.0  # at the anchor
    with torch.no_grad():
        model.linear.weight += torch.tensor([[0.1, -0.3]])
        model.linear.bias += 0.2
    expected = 0.5 * (fw[0] * 0.1**2 + fw[1] * 0.3**2 + fb * 0.2**2)
    assert torch.isclose(ewc.penalty(model), torch.tensor(expected), rtol=1e-5)


def test_each_experience_keeps_its_own_fisher_and_anchor():
    model = TinyModel(W, B0)
    ewc = make(EWCRegularizer, weight=1.0, samples=3)
    ewc.end_experience(model, [one_step_batch(XS, TS)])
    first = fisher_by_hand(W, B0)
    w2, b2 = [0.6, 0.1], -0.3
    with torch.no_grad():
        model.linear.weight.copy_(torch.tensor([w2]))
        model.linear.bias.fill_(b2)
    ewc.end_experience(model, [one_step_batch(XS, TS)])
    second = fisher_by_hand(w2, b2)
    # the penalty now: first term anchored at W, B0; second at w2, b2 (zero there)
    d = [w2[0] - W[0], w2[1] - W[1], b2 - B0]
    expected = first[0][0] * d[0] ** 2 + first[0][1] * d[1] ** 2 + first[1] * d[2] ** 2
    assert torch.isclose(ewc.penalty(model), torch.tensor(expected), rtol=1e-5)
    restored = make(EWCRegularizer, weight=1.0, samples=3)
    restored.load_state_dict(ewc.state_dict())
    assert len(restored.anchors) == 2
    assert torch.allclose(restored.anchors[1].importance["linear.bias"], torch.tensor([second[1]]))
    assert torch.isclose(restored.penalty(model), ewc.penalty(model))


def test_online_ewc_decays_the_running_fisher():
    model = TinyModel(W, B0)
    online = make(OnlineEWCRegularizer, weight=2.0, gamma=0.5, samples=3)
    online.end_experience(model, [one_step_batch(XS, TS)])
    first = fisher_by_hand(W, B0)
    w2, b2 = [0.6, 0.1], -0.3
    with torch.no_grad():
        model.linear.weight.copy_(torch.tensor([w2]))
        model.linear.bias.fill_(b2)
    online.end_experience(model, [one_step_batch(XS, TS)])
    second = fisher_by_hand(w2, b2)
    running = [0.5 * first[0][k] + second[0][k] for k in range(2)]
    assert torch.allclose(online.anchor.importance["linear.weight"], torch.tensor([running]))
    assert torch.allclose(online.anchor.anchor["linear.weight"], torch.tensor([w2]))
    with torch.no_grad():
        model.linear.bias += 0.1
    expected = 2.0 * (0.5 * first[1] + second[1]) * 0.1**2
    assert torch.isclose(online.penalty(model), torch.tensor(expected), rtol=1e-4)
