"""The ``kv`` memory as End-To-End Memory Networks (Sukhbaatar et al. 2015): adjacent
hop embeddings, the tied query, reading before writing, linear start, reads kept from
the controller, and the whole-sequence path, against float64 computations from the
paper's equations (section 2) and against the step-by-step memory."""

from __future__ import annotations

import itertools
import json
import math

import pytest
import torch
from pydantic import ValidationError
from typer.testing import CliRunner

from nma import UsageError
from nma.cli import app
from nma.model import MemoryModel
from nma_plugins.controllers.mlp import MLPController
from nma_plugins.memories.kv import KVMemory
from tests.helpers import run_nma

CPU = torch.device("cpu")
F64 = torch.float64


def memn2n(**options) -> KVMemory:
    base = {
        "slots": 6,
        "width": 3,
        "key_size": 3,
        "read_heads": 1,
        "hops": 3,
        "hop_embeddings": "adjacent",
        "tie_query": True,
        "read_before_write": True,
        "read_query": True,
    }
    return KVMemory(KVMemory.Config(**{**base, **options})).double()


def reference_answer_vector(
    sentences, question, embeddings, presence, linear=False, scaled=True, gates=None
):
    """u^{K+1} of MemN2N for one story (plain Python floats).

    ``embeddings[k]`` maps an input vector to E^k; A^k = E^{k-1}, C^k = E^k (adjacent
    tying), B = A^1 = E^0; p_i = softmax_i(m_i e^{u . a_i / sqrt(d)}) (eq. 1, with the
    memory's presence m_i as a prior and the scaled dot product; the paper's plain
    u . a_i when not ``scaled``), or m_i u . a_i / sqrt(d) without the softmax (linear
    start); o = sum_i p_i c_i (eq. 2); u^{k+1} = u^k + o^k, or with ``gates`` (per hop a
    weight matrix and a bias, as lists) Liu & Perez's gated update
    u^{k+1} = o^k T^k + u^k (1 - T^k), T^k = sigmoid(W^k u^k + b^k).
    """

    def embed(k, x):
        return [sum(w * v for w, v in zip(row, x, strict=True)) for row in embeddings[k]]

    u = embed(0, question)
    d = len(u)
    for k in range(1, len(embeddings)):
        a = [embed(k - 1, x) for x in sentences]
        c = [embed(k, x) for x in sentences]
        scale = math.sqrt(d) if scaled else 1.0
        scores = [sum(p * q for p, q in zip(u, ai, strict=True)) / scale for ai in a]
        if linear:
            p = [m * s for m, s in zip(presence, scores, strict=True)]
        else:
            top = max(scores)
            raw = [m * math.exp(s - top) for m, s in zip(presence, scores, strict=True)]
            p = [r / sum(raw) for r in raw]
        o = [sum(p[i] * c[i][j] for i in range(len(c))) for j in range(d)]
        if gates is None:
            u = [x + y for x, y in zip(u, o, strict=True)]
        else:
            weight, bias = gates[0][k - 1], gates[1][k - 1]
            t = [
                1 / (1 + math.exp(-(sum(w * x for w, x in zip(row, u, strict=True)) + b)))
                for row, b in zip(weight, bias, strict=True)
            ]
            u = [y * g + x * (1 - g) for x, y, g in zip(u, o, t, strict=True)]
    return u


def story_interfaces(memory: KVMemory, inputs: torch.Tensor, embeddings, gates):
    """The interface vectors of linear embeddings: [E^0 x | ... | E^K x | gate], without
    the gate when the memory has none."""
    parts = [inputs @ torch.tensor(e, dtype=F64).T for e in embeddings]
    if memory.config.write_gate:
        parts.append(gates.unsqueeze(-1))
    return torch.cat(parts, dim=-1)


@pytest.mark.parametrize(
    ("sentences", "linear", "paper"),
    [(4, False, False), (9, False, False), (4, True, False), (9, False, True), (4, True, True)],
)
def test_question_read_is_the_papers_answer_vector(
    sentences: int, linear: bool, paper: bool
) -> None:
    """``paper``: plain dot-product scores and no write gate, every memory fully present."""
    torch.manual_seed(0)
    options = {"scaled_scores": False, "write_gate": False} if paper else {}
    memory = memn2n(linear_start_steps=1 if linear else 0, **options)
    memory.train()
    # E^0..E^3 and a gate (none in the paper's form), no query values
    assert memory.interface_size == 3 * 4 + (0 if paper else 1)
    features, hops = 5, 3
    embeddings = torch.randn(hops + 1, 3, features).tolist()
    inputs = torch.randn(sentences + 1, 2, features, dtype=F64)  # the story, then the question
    gate_logits = torch.randn(sentences + 1, 2, dtype=F64)
    interfaces = story_interfaces(memory, inputs, embeddings, gate_logits)
    state = memory.initial_state(2, CPU, F64)
    assert memory.linear is linear
    for interface in interfaces.unbind(0):
        read, state = memory(interface, state)
    kept = min(sentences, memory.slots)  # the ring keeps the last `slots` sentences
    for b in range(2):
        story = inputs[sentences - kept : sentences, b].tolist()
        presence = torch.sigmoid(gate_logits[sentences - kept : sentences, b]).tolist()
        if paper:
            presence = [1.0] * kept
        expected = reference_answer_vector(
            story, inputs[sentences, b].tolist(), embeddings, presence, linear, not paper
        )
        assert torch.allclose(read[b], torch.tensor(expected, dtype=F64), atol=1e-12)


def test_question_does_not_read_itself_only_with_read_before_write() -> None:
    torch.manual_seed(1)
    before, after = memn2n(), memn2n(read_before_write=False)
    after.load_state_dict(before.state_dict())
    x = torch.randn(3, 2, before.interface_size, dtype=F64)
    reads = {}
    for name, memory in (("before", before), ("after", after)):
        state = memory.initial_state(2, CPU, F64)
        for interface in x.unbind(0):
            reads[name], state = memory(interface, state)
        # the last read's weights: over the 2 earlier slots only, or over all 3
        seen = (state.read_weights[:, 0] > 0).sum(dim=-1)
        assert seen.tolist() == ([2, 2] if name == "before" else [3, 3])
    assert not torch.allclose(reads["before"], reads["after"])


CASES = [
    (*case, True)
    for case in itertools.product(
        [False, True],  # read_before_write
        ["shared", "adjacent"],
        [False, True],  # tie_query
        [False, True],  # linear
        [3, 9],  # steps (9 > slots: the ring wraps)
    )
] + [  # without the write gate, and unscaled scores
    (False, "shared", False, False, 9, False),
    (True, "adjacent", True, False, 9, False),
    (True, "adjacent", True, True, 3, False),
]


@pytest.mark.parametrize(("before", "embeddings", "tie", "linear", "steps", "gated"), CASES)
def test_run_sequence_equals_step_by_step(before, embeddings, tie, linear, steps, gated) -> None:
    torch.manual_seed(2)
    memory = memn2n(
        write_gate=gated,
        scaled_scores=gated,
        slots=4,
        hops=2,
        read_heads=1 if tie else 2,
        hop_embeddings=embeddings,
        tie_query=tie,
        read_before_write=before,
        linear_start_steps=3 if linear else 0,
    )
    memory.train()
    state = memory.initial_state(2, CPU, F64)
    for _ in range(2):  # a start that is not empty, with a shuffled ring
        _, state = memory(torch.randn(2, memory.interface_size, dtype=F64), state)
    state = state._replace(
        queue=torch.stack([torch.randperm(4), torch.randperm(4)]),
        presence=torch.rand(2, 4, dtype=F64),
    )
    x = torch.randn(steps, 2, memory.interface_size, dtype=F64, requires_grad=True)
    reads, final = memory.run_sequence(x, state)
    stepped, expected = [], state
    for interface in x.unbind(0):
        read, expected = memory(interface, expected)
        stepped.append(read)
    stepped = torch.stack(stepped)
    assert torch.allclose(reads, stepped, atol=1e-12)
    for name, got, want in zip(final._fields, final, expected, strict=True):
        assert torch.equal(got, want) if name == "queue" else torch.allclose(got, want), name
    weights = torch.randn_like(reads)
    (grad,) = torch.autograd.grad((reads * weights).sum(), x)
    (want_grad,) = torch.autograd.grad((stepped * weights).sum(), x)
    assert torch.allclose(grad, want_grad, atol=1e-12)


def test_linear_start_counts_training_batches_and_survives_a_checkpoint() -> None:
    memory = memn2n(linear_start_steps=2)
    memory.train()
    seen = []
    for _ in range(3):
        memory.initial_state(1, CPU, F64)
        seen.append(memory.linear)
    assert seen == [True, True, False]
    memory.eval()
    memory.initial_state(1, CPU, F64)  # evaluation does not advance the clock
    assert memory.batches_seen == 3 and not memory.linear
    restored = memn2n(linear_start_steps=2)
    restored.load_state_dict(memory.state_dict())
    assert restored.batches_seen == 3 and not restored.linear
    assert not memn2n().linear and "linear_start_clock" not in memn2n().state_dict()


def test_linear_attention_has_no_softmax() -> None:
    memory = memn2n(hops=1, slots=3, linear_start_steps=5, read_query=False)
    memory.train()
    state = memory.initial_state(1, CPU, F64)
    key = torch.tensor([1.0, 2.0, 0.0], dtype=F64)
    big = torch.tensor([50.0], dtype=F64)  # presence sigmoid(50) = 1
    state = memory(torch.cat([key, 2 * key, big]).unsqueeze(0), state)[1]
    query = torch.tensor([0.0, 1.0, 1.0], dtype=F64)
    read, state = memory(torch.cat([query, query, big]).unsqueeze(0), state)
    score = 2.0 / math.sqrt(3)  # query . key / sqrt(d)
    assert torch.allclose(state.read_weights[0, 0, 0], torch.tensor(score, dtype=F64))
    assert torch.allclose(read[0], score * 2 * key)


def test_options_that_cannot_work_are_refused() -> None:
    with pytest.raises(ValueError, match="key_size == width"):
        KVMemory(KVMemory.Config(hop_embeddings="adjacent", key_size=4, width=3))
    with pytest.raises(ValueError, match="read_heads == 1"):
        KVMemory(KVMemory.Config(tie_query=True, read_heads=2))
    with pytest.raises(ValidationError):
        KVMemory.Config(linear_start_steps=-1)


def passthrough_model(memory: KVMemory) -> MemoryModel:
    """MemN2N's model: a pass-through ``mlp`` (7 inputs) before ``memory``, 5 outputs."""
    controller = MLPController(MLPController.Config(layers=0), input_size=7)
    return MemoryModel(controller, memory, output_size=5).double()


def step_through(model: MemoryModel, inputs: torch.Tensor) -> tuple[torch.Tensor, list]:
    """The model stepped one time step at a time: its outputs (T, B, 5) and each step's
    state."""
    state, outputs, states = model.initial_state(inputs.shape[1]), [], []
    for x in inputs.unbind(0):
        y, state = model.step(x, state)
        outputs.append(y)
        states.append(state)
    return torch.stack(outputs), states


def test_model_without_controller_reads_matches_its_steps() -> None:
    torch.manual_seed(3)
    memory = memn2n(controller_reads=False, slots=4)
    assert memory.fed_reads_size() == 0
    model = passthrough_model(memory)
    assert model.input_size == 7 and model.controller.output_size == 7
    inputs = torch.randn(6, 2, 7, dtype=F64)
    outputs, final = model(inputs)
    stepped, states = step_through(model, inputs)
    assert torch.allclose(outputs, stepped, atol=1e-12)
    assert torch.allclose(final.reads, states[-1].reads, atol=1e-12)
    # the interface sees the input alone: the reads never reach the controller
    assert model.interface.in_features == 7


def test_answer_from_reads_feeds_the_head_the_reads_alone() -> None:
    """With ``answer_from_reads`` the output is ``W_o r_t``: MemN2N's ``W u^{K+1}``."""
    torch.manual_seed(4)
    memory = memn2n(controller_reads=False, slots=4, answer_from_reads=True)
    assert not memory.head_sees_controller
    model = passthrough_model(memory)
    assert model.head.in_features == memory.read_size
    inputs = torch.randn(6, 2, 7, dtype=F64)
    outputs, _ = model(inputs)
    stepped, states = step_through(model, inputs)
    for y, state in zip(stepped, states, strict=True):
        expected = state.reads @ model.head.weight.T + model.head.bias
        assert torch.allclose(y, expected, atol=1e-12)
    assert torch.allclose(outputs, stepped, atol=1e-12)
    default = passthrough_model(memn2n(controller_reads=False, slots=4))
    assert default.head.in_features == 7 + memory.read_size


def test_mlp_without_layers_passes_its_input_through() -> None:
    controller = MLPController(MLPController.Config(layers=0, hidden_size=9), input_size=4)
    x = torch.randn(3, 4)
    out, state = controller(x, controller.initial_state(3, CPU, torch.float32))
    assert controller.output_size == 4 and torch.equal(out, x) and state is None
    assert not list(controller.parameters())


MEMN2N_CLI = [
    "--memory", "kv", "--controller", "mlp", "--task", "babi",
    "--set", "controller.layers=0", "--set", "memory.slots=5", "--set", "memory.width=4",
    "--set", "memory.key_size=4", "--set", "memory.read_heads=1", "--set", "memory.hops=3",
    "--set", "memory.hop_embeddings='adjacent'", "--set", "memory.tie_query=true",
    "--set", "memory.read_before_write=true", "--set", "memory.read_query=true",
    "--set", "memory.controller_reads=false", "--set", "memory.linear_start_steps=2",
    "--set", "task.tasks=[1, 2]", "--set", "task.max_sentences=5", "--set", "task.eval_size=3",
    "--set", "task.sentence_encoding='position'", "--set", "task.temporal=true",
    "--set", "task.time_noise=0.1", "--set", "task.answer_at='question'",
    "--set", "train.batch_size=4", "--set", "train.eval_every=0",
    "--set", "train.checkpoint_every=0",
]  # fmt: skip


def test_the_memn2n_configuration_trains_from_the_cli(tmp_path) -> None:
    out = tmp_path / "run"
    args = ["run", *MEMN2N_CLI, "--steps", "3", "--no-progress", "--device", "cpu"]
    result = CliRunner().invoke(app, [*args, "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["step"] == 3 and 0 <= summary["eval"]["error"] <= 1
    assert 'hop_embeddings = "adjacent"' in (out / "config.toml").read_text()


SPELLING = [[0], [1, 4], [], [6]]  # class 2 is no input word: a free row


def tied_model(**options) -> MemoryModel:
    """The pass-through MemN2N model with ``W^T = C^K``: 7 inputs, 4 answer classes."""
    memory = memn2n(controller_reads=False, slots=4, write_gate=False, tie_answer=True, **options)
    controller = MLPController(MLPController.Config(layers=0), input_size=7)
    return MemoryModel(controller, memory, output_size=4, output_channels=SPELLING).double()


@pytest.mark.parametrize("from_reads", [True, False])
def test_tied_answer_matrix_is_the_last_hops_output_embedding(from_reads: bool) -> None:
    """The logit of class a is u^{K+1} . sum_{c in a} C^K[:, c] + b_a (MemN2N section 2.2,
    W^T = C^K), with C^K the interface rows of E^3, read after the interface weights
    changed (a head that copied them once would miss the change); plus V x where the
    head sees the controller output too."""
    torch.manual_seed(5)
    model = tied_model(answer_from_reads=from_reads)
    with torch.no_grad():
        model.interface.weight.normal_()
        model.interface.bias.zero_()
    embeddings = model.interface.weight.detach().view(4, 3, 7).tolist()  # E^0..E^3
    inputs = torch.randn(5, 2, 7, dtype=F64)  # four sentences, then the question
    outputs, _ = model(inputs)
    for b in range(2):
        story, question = inputs[:4, b].tolist(), inputs[4, b].tolist()
        u = reference_answer_vector(story, question, embeddings, [1.0] * 4)
        for a, channels in enumerate(SPELLING):
            if channels:
                row = [sum(embeddings[3][j][c] for c in channels) for j in range(3)]
            else:
                row = model.head.free[a].tolist()
            bias = float(model.head.bias.detach()[a])
            logit = sum(r * x for r, x in zip(row, u, strict=True)) + bias
            if not from_reads:
                logit += float(model.head.hidden.weight.detach()[a] @ inputs[4, b])
            assert math.isclose(float(outputs[4, b, a]), logit, abs_tol=1e-12)


def test_tied_head_trains_the_embedding_it_answers_with() -> None:
    """The answer's gradient reaches C^K through the head: with the memory's own path
    cut (no hops read C^K when its reads are detached), the spelled columns of E^3
    still get a gradient, the unspelled ones none."""
    torch.manual_seed(6)
    model = tied_model(answer_from_reads=True)
    reads = torch.randn(3, model.memory.read_size, dtype=F64)
    logits = model._head(torch.zeros(3, 7, dtype=F64), reads)
    logits.sum().backward()
    grad = model.interface.weight.grad.view(4, 3, 7)
    assert grad[:3].abs().sum() == 0  # E^0..E^2 are not the answer matrix
    spelled = sorted({c for s in SPELLING for c in s})
    assert (grad[3][:, spelled].abs().sum(dim=0) > 0).all()
    assert grad[3][:, [2, 3, 5]].abs().sum() == 0
    assert torch.allclose(grad[3][:, 1], grad[3][:, 4])  # both channels spell class 1
    assert model.head.free.grad[2].abs().sum() > 0  # the free row trains
    assert model.head.free.grad[[0, 1, 3]].abs().sum() == 0  # the tied rows have none


def test_a_tie_that_cannot_mean_what_it_says_is_refused() -> None:
    with pytest.raises(ValueError, match="hop_embeddings='adjacent'"):
        KVMemory(KVMemory.Config(tie_answer=True, hop_embeddings="shared"))
    memory = memn2n(controller_reads=False, tie_answer=True)
    layered = MLPController(MLPController.Config(layers=1), input_size=7)
    with pytest.raises(UsageError, match="passes its input through"):
        MemoryModel(layered, memory, output_size=4, output_channels=SPELLING)
    passthrough = MLPController(MLPController.Config(layers=0), input_size=7)
    with pytest.raises(UsageError, match="Task.output_channels"):
        MemoryModel(passthrough, memory, output_size=4)
    with pytest.raises(UsageError, match="input channel 9"):
        MemoryModel(passthrough, memory, output_size=1, output_channels=[[9]])


def test_the_tied_memn2n_trains_resumes_and_refuses_a_task_without_words(tmp_path) -> None:
    out = tmp_path / "run"
    tied = [*MEMN2N_CLI, "--set", "memory.tie_answer=true"]
    tied += ["--set", "memory.answer_from_reads=true"]
    args = ["run", *tied, "--no-progress", "--device", "cpu", "--out", str(out)]
    args = [a if a != "train.checkpoint_every=0" else "train.checkpoint_every=2" for a in args]
    result = CliRunner().invoke(app, [*args, "--steps", "2"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    resumed = CliRunner().invoke(
        app, ["run", "--resume", str(out), "--steps", "3", "--no-progress"], catch_exceptions=False
    )
    assert resumed.exit_code == 0 and "at step 2" in " ".join(resumed.output.split())
    assert json.loads((out / "summary.json").read_text())["step"] == 3
    copy = ["run", "--memory", "kv", "--controller", "mlp", "--task", "copy", "--steps", "1"]
    options = ["controller.layers=0", "memory.hop_embeddings='adjacent'", "memory.read_heads=1"]
    options.append("memory.tie_answer=true")
    refused = run_nma(*copy, *[x for o in options for x in ("--set", o)])
    assert refused.code == 2 and "Task.output_channels" in refused.output
    assert "Traceback" not in refused.output


def test_init_std_starts_the_embeddings_as_the_paper_does() -> None:
    """``init_std = 0.1``: N(0, 0.01) weights and zero biases (MemN2N section 4.2); the
    default leaves nn.Linear's uniform initialisation, bounded by 1/sqrt(fan_in)."""
    torch.manual_seed(7)
    controller = MLPController(MLPController.Config(layers=0), input_size=400)
    memory = KVMemory(KVMemory.Config(width=50, key_size=50, read_heads=1, init_std=0.1))
    layer = MemoryModel(controller, memory, output_size=3).interface
    assert abs(float(layer.weight.std()) - 0.1) < 0.005 and abs(float(layer.weight.mean())) < 0.005
    assert float(layer.weight.abs().max()) > 0.3 and layer.bias.abs().sum() == 0
    default = MemoryModel(controller, KVMemory(KVMemory.Config()), output_size=3).interface
    assert float(default.weight.abs().max()) <= 1 / math.sqrt(400)
    assert default.bias.abs().sum() > 0


@pytest.mark.parametrize("embeddings", ["adjacent", "shared"])
def test_gated_hops_are_liu_and_perezs_update(embeddings: str) -> None:
    """With ``hop_gates`` the question's read is u^{K+1} of the gated update (Gated
    End-to-End Memory Networks, section 3), against float64 from the equations; the
    shared form is the adjacent one with every E^k equal to the key and value."""
    torch.manual_seed(8)
    memory = memn2n(hop_gates=True, write_gate=False, hop_embeddings=embeddings)
    with torch.no_grad():
        memory.gate_bias.normal_()  # starts at 0; any value must work
    assert memory.gate_weight.shape == (3, 3, 3) and memory.gate_bias.shape == (3, 3)
    features = 5
    shared = torch.randn(3, features).tolist()
    table = torch.randn(4, 3, features).tolist() if embeddings == "adjacent" else [shared] * 4
    inputs = torch.randn(7, 2, features, dtype=F64)  # six sentences, then the question
    if embeddings == "adjacent":
        interfaces = story_interfaces(memory, inputs, table, None)
    else:  # key and value: the same embedding
        interfaces = story_interfaces(memory, inputs, [shared, shared], None)
    state = memory.initial_state(2, CPU, F64)
    for interface in interfaces.unbind(0):
        read, state = memory(interface, state)
    gates = (memory.gate_weight.tolist(), memory.gate_bias.tolist())
    for b in range(2):
        expected = reference_answer_vector(
            inputs[:6, b].tolist(), inputs[6, b].tolist(), table, [1.0] * 6, gates=gates
        )
        assert torch.allclose(read[b], torch.tensor(expected, dtype=F64), atol=1e-12)
    ungated = memn2n(write_gate=False, hop_embeddings=embeddings)
    plain, state = None, ungated.initial_state(2, CPU, F64)
    for interface in interfaces.unbind(0):
        plain, state = ungated(interface, state)
    assert not torch.allclose(read, plain)  # the gates change the read


def test_gated_hops_run_over_a_sequence_as_step_by_step_and_train() -> None:
    torch.manual_seed(9)
    memory = memn2n(hop_gates=True, slots=4, hops=2)
    x = torch.randn(6, 2, memory.interface_size, dtype=F64, requires_grad=True)
    reads, _ = memory.run_sequence(x, memory.initial_state(2, CPU, F64))
    state, stepped = memory.initial_state(2, CPU, F64), []
    for interface in x.unbind(0):
        read, state = memory(interface, state)
        stepped.append(read)
    assert torch.allclose(reads, torch.stack(stepped), atol=1e-12)
    reads.sum().backward()
    assert memory.gate_weight.grad.abs().sum() > 0 and memory.gate_bias.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="key_size == width"):
        KVMemory(KVMemory.Config(hop_gates=True, key_size=4, width=3))
