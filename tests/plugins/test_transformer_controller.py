"""The ``transformer`` controller against causal window attention computed by hand."""

from __future__ import annotations

import math

import torch

from nma_plugins.controllers.transformer import TransformerController, TransformerState


def _layer_norm(v: list[float], norm: torch.nn.LayerNorm) -> list[float]:
    mean = sum(v) / len(v)
    var = sum((a - mean) ** 2 for a in v) / len(v)
    g, b = norm.weight.tolist(), norm.bias.tolist()
    return [(a - mean) / math.sqrt(var + norm.eps) * g[i] + b[i] for i, a in enumerate(v)]


def _linear(layer: torch.nn.Linear, v: list[float]) -> list[float]:
    w, b = layer.weight.tolist(), layer.bias.tolist()
    return [sum(w[o][i] * v[i] for i in range(len(v))) + b[o] for o in range(len(w))]


def _reference(controller: TransformerController, xs: list[list[float]]) -> list[list[float]]:
    """One layer, one sequence: the output at every step, attention written out."""
    (block,) = controller.blocks
    c = controller.config
    head = c.hidden_size // c.heads
    embedded = [_linear(controller.embed, x) for x in xs]
    outputs = []
    for t in range(len(xs)):
        steps = list(range(max(0, t - c.window + 1), t + 1))  # causal, within the window
        place = {s: c.window - 1 - (t - s) for s in steps}  # newest at window - 1
        u = {
            s: _layer_norm(
                [e + p for e, p in zip(embedded[s], block.place[place[s]].tolist(), strict=True)],
                block.norm_attention,
            )
            for s in steps
        }
        q = _linear(block.query, u[t])
        keys = {s: _linear(block.key, u[s]) for s in steps}
        values = {s: _linear(block.value, u[s]) for s in steps}
        attended = []
        for j in range(c.heads):
            part = slice(j * head, (j + 1) * head)
            scores = {
                s: sum(a * b for a, b in zip(q[part], keys[s][part], strict=True)) / math.sqrt(head)
                for s in steps
            }
            top = max(scores.values())
            weights = {s: math.exp(scores[s] - top) for s in steps}
            total = sum(weights.values())
            attended += [
                sum(weights[s] / total * values[s][part][i] for s in steps) for i in range(head)
            ]
        g = [a + b for a, b in zip(embedded[t], _linear(block.out, attended), strict=True)]
        first, _, second = block.feedforward
        hidden = [max(0.0, v) for v in _linear(first, _layer_norm(g, block.norm_feedforward))]
        h = [a + b for a, b in zip(g, _linear(second, hidden), strict=True)]
        outputs.append(_layer_norm(h, controller.norm))
    return outputs


def test_transformer_step_matches_window_attention_by_hand() -> None:
    torch.manual_seed(0)
    config = TransformerController.Config(hidden_size=6, heads=2, window=3, feedforward_size=5)
    controller = TransformerController(config, input_size=4).double()
    with torch.no_grad():
        controller.blocks[0].place.normal_()  # make the window places matter
    xs = torch.randn(7, 2, 4, dtype=torch.float64)
    state = controller.initial_state(2, torch.device("cpu"), torch.float64)
    assert isinstance(state, TransformerState) and state.window.shape == (1, 2, 3, 6)
    outputs = []
    for x in xs:
        out, state = controller(x, state)
        outputs.append(out)
    got = torch.stack(outputs)  # (T, B, D)
    for b in range(2):
        expected = torch.tensor(_reference(controller, xs[:, b].tolist()), dtype=torch.float64)
        assert torch.allclose(got[:, b], expected, atol=1e-12)
    assert controller.output_size == 6


def test_transformer_is_causal_and_forgets_beyond_its_window() -> None:
    torch.manual_seed(0)
    config = TransformerController.Config(hidden_size=8, heads=2, layers=2, window=3)
    controller = TransformerController(config, input_size=2)
    xs = torch.randn(6, 1, 2)
    changed = xs.clone()
    changed[4] += 1.0  # a later input

    def run(inputs: torch.Tensor) -> torch.Tensor:
        state = controller.initial_state(1, torch.device("cpu"), torch.float32)
        outs = []
        for x in inputs:
            out, state = controller(x, state)
            outs.append(out)
        return torch.stack(outs)

    base, later = run(xs), run(changed)
    assert torch.equal(base[:4], later[:4]) and not torch.allclose(base[4], later[4])
    early = xs.clone()
    early[0] += 1.0  # two layers of window 3 reach 4 steps back: step 5 sees steps 1..5
    assert torch.equal(run(early)[5], base[5])


def test_transformer_compiles_with_its_fixed_size_state() -> None:
    torch.manual_seed(0)
    config = TransformerController.Config(hidden_size=8, heads=2, window=4)
    controller = TransformerController(config, input_size=3)
    step = torch.compile(controller, backend="eager", fullgraph=True)
    state = controller.initial_state(2, torch.device("cpu"), torch.float32)
    x = torch.randn(2, 3)
    eager_out, eager_state = controller(x, state)
    out, new_state = step(x, state)
    assert torch.allclose(out, eager_out) and new_state.window.shape == state.window.shape
