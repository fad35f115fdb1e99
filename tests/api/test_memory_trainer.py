"""MemoryTrainer: it learns, stops early at the right epoch, clips, resumes exactly,
trains every model of nma.models, and shows progress with Rich or tqdm."""

from __future__ import annotations

import io
import sys
import types
from pathlib import Path

import pytest
import torch
from rich.console import Console
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

import nma.models
from nma import MemoryTrainer
from nma.checkpoint import list_checkpoints, load_checkpoint
from nma.layers import MemoryLayer
from nma.training import EarlyStopping, last_step
from tests.api.training import delayed_bits


class Tagger(nn.Module):
    """A user's network with a memory layer inside: ``(B, T, 8)`` → ``(B, T, 8)`` logits."""

    def __init__(self, dropout: float = 0.0) -> None:
        super().__init__()
        self.memory = MemoryLayer(8, "dnc", {"slots": 8, "width": 6}, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(8 + self.memory.output_size, 8)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.drop(torch.cat([x, self.memory(x)], dim=-1)))


def quiet(model: nn.Module, **options: object) -> MemoryTrainer:
    """A trainer on the CPU with Adam (lr 1e-2), binary cross-entropy and no display."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    return MemoryTrainer(model, optimizer, nn.BCEWithLogitsLoss(), "cpu", progress=False, **options)


def test_loss_goes_down_on_a_tiny_problem() -> None:
    torch.manual_seed(0)
    history = quiet(Tagger()).train(delayed_bits(), delayed_bits(32, seed=1), epochs=4)
    assert history.epochs == 4 and len(history.val) == 4 and not history.stopped_early
    assert history.train[-1] < 0.9 * history.train[0], history.train
    assert history.val[-1] < 0.9 * history.val[0], history.val
    assert history.best_epoch == 3


class ScriptedLoss(nn.Module):
    """Binary cross-entropy in training; in evaluation (no gradients) the next value of
    ``script``, so the validation loss of each epoch is chosen by the test."""

    def __init__(self, script: list[float]) -> None:
        super().__init__()
        self.script = list(script)

    def forward(self, outputs: Tensor, targets: Tensor) -> Tensor:
        if torch.is_grad_enabled():
            return nn.functional.binary_cross_entropy_with_logits(outputs, targets)
        return outputs.new_tensor(self.script.pop(0))


@pytest.mark.parametrize(
    ("script", "patience", "min_delta", "epochs"),
    [
        ([5.0, 4.0, 3.0, 3.5, 3.25, 3.125, 1.0, 1.0], 2, 0.0, 5),  # 2 epochs without a new best
        ([5.0, 4.0, 3.0, 3.5, 2.75, 3.0, 3.0, 3.0], 2, 0.0, 7),  # 2.75 resets the count
        ([5.0, 4.0, 3.0, 2.0, 1.0, 0.5, 0.25, 0.125], 2, 0.0, 8),  # always better: no stop
        ([5.0, 4.9375, 4.9375, 4.0, 1.0, 1.0, 1.0, 1.0], 2, 0.125, 3),  # improvements < 0.125
        ([5.0, 6.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0], 1, 0.0, 2),
    ],
)
def test_early_stopping_stops_at_the_right_epoch(
    script: list[float], patience: int, min_delta: float, epochs: int
) -> None:
    torch.manual_seed(0)
    model = nn.Linear(8, 8)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    trainer = MemoryTrainer(model, optimizer, ScriptedLoss(script), "cpu", progress=False,
                            patience=patience, min_delta=min_delta)  # fmt: skip
    val = DataLoader(TensorDataset(torch.zeros(4, 8), torch.zeros(4, 8)), batch_size=4)
    history = trainer.train(delayed_bits(16, 1), val, epochs=8)
    assert history.epochs == epochs and history.val == script[:epochs]
    assert history.stopped_early == (epochs < 8)
    assert history.best_epoch == min(range(epochs), key=script.__getitem__)


def test_early_stopping_rule() -> None:
    stopper = EarlyStopping(patience=2, min_delta=0.5)
    assert [stopper.update(i, v) for i, v in enumerate([3.0, 2.0, 1.6, 1.7, 0.0])] == [
        False, False, False, True, False,
    ]  # fmt: skip
    assert (stopper.best, stopper.best_epoch) == (0.0, 4)


@pytest.mark.parametrize("clip", [0.05, 0.0])
def test_gradient_clipping_is_applied(clip: float) -> None:
    torch.manual_seed(0)
    model = Tagger()
    trainer = quiet(model, grad_clip=clip)
    norms: list[float] = []

    def record(optimizer: torch.optim.Optimizer, *args: object) -> None:
        grads = [p.grad for group in optimizer.param_groups for p in group["params"]]
        norms.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))

    trainer.optimizer.register_step_pre_hook(record)
    trainer.train(delayed_bits(), epochs=1)
    assert len(norms) == 4
    if clip:
        assert max(norms) <= clip * (1 + 1e-4), norms
    else:
        assert min(norms) > 0.05, norms  # the unclipped gradients are larger: the test can fail


def checkpointed(folder: Path, seed: int, **options: object) -> MemoryTrainer:
    """A Tagger with dropout (the global generator matters) and the SI regularizer
    (state of its own), trained on a loader shuffled by the global generator."""
    torch.manual_seed(seed)
    return quiet(Tagger(dropout=0.2), checkpoint_dir=folder, regularizers="si", **options)


def shuffled() -> DataLoader:
    x, y = next(iter(DataLoader(delayed_bits(48).dataset, batch_size=48)))
    return DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True)  # global generator


def test_a_resumed_training_ends_as_an_uninterrupted_one(tmp_path: Path) -> None:
    torch.manual_seed(1)
    whole = checkpointed(tmp_path / "whole", 0, checkpoint_every=2, keep_checkpoints=100)
    expected = whole.train(shuffled(), delayed_bits(16, seed=2), epochs=3)
    steps = [step for step, _ in list_checkpoints(tmp_path / "whole")]
    assert steps == [2, 3, 4, 6, 8, 9]  # every 2 steps and at each epoch's end (3 batches)
    reference = {k: v.clone() for k, v in whole.model.state_dict().items()}

    # from mid-epoch (step 4: epoch 1, one batch done) and from an epoch's end (step 3)
    for step in (4, 3):
        torch.manual_seed(99)  # other generators until the checkpoint restores them
        resumed = checkpointed(tmp_path / f"from-{step}", seed=7)
        path = next(p for s, p in list_checkpoints(tmp_path / "whole") if s == step)
        got = resumed.train(shuffled(), delayed_bits(16, seed=2), epochs=3, resume=path)
        assert got == expected, step
        for key, value in resumed.model.state_dict().items():
            assert torch.equal(value, reference[key]), (step, key)
        si, si_whole = (
            resumed.regularizers["si"].state_dict(),
            whole.regularizers["si"].state_dict(),
        )
        assert si.keys() == si_whole.keys() and len(si) > 0
        assert all(torch.equal(si[k], si_whole[k]) for k in si)


def test_resume_true_goes_on_from_the_latest_checkpoint(tmp_path: Path) -> None:
    torch.manual_seed(1)
    whole = checkpointed(tmp_path / "a", 0).train(shuffled(), epochs=3)
    torch.manual_seed(1)
    first = checkpointed(tmp_path / "b", 0)
    first.train(shuffled(), epochs=2)
    torch.manual_seed(5)
    again = checkpointed(tmp_path / "b", 3)
    history = again.train(shuffled(), epochs=3, resume=True)
    assert history == whole and again.step == 9
    checkpoint = load_checkpoint(list_checkpoints(tmp_path / "b")[-1][1])
    assert checkpoint.extra["trainer"] == "MemoryTrainer" and checkpoint.step == 9


MODELS = [
    ("NeuralTuringMachine", {}),
    ("DifferentiableNeuralComputer", {}),
    ("MemoryAugmentedNetwork", {}),
    ("MemoryEnhancedRNN", {}),
    ("MemoryTransformer", {"segment_length": 3}),
    ("ReasoningNetwork", {}),
    ("KnowledgeGraphModel", {}),
    ("TemporalMemoryModel", {}),
    ("RecurrentMemoryModel", {}),
    ("ContinualLearningModel", {"num_tasks": 2}),
]


def test_every_model_class_is_covered() -> None:
    assert sorted(name for name, _ in MODELS) == sorted(nma.models.__all__)


@pytest.mark.parametrize(("name", "options"), MODELS)
def test_every_model_trains_with_the_memory_trainer(name: str, options: dict) -> None:
    torch.manual_seed(0)
    model = getattr(nma.models, name)(8, 16, 8, 4, output_size=3, batch_first=True, **options)
    inputs = torch.randn(12, 5, 8)
    labels = (inputs[:, 0, 0] > 0).long()
    loader = DataLoader(TensorDataset(inputs, labels), batch_size=6)
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    trainer = MemoryTrainer(model, optimizer, nn.CrossEntropyLoss(), "cpu", output=last_step,
                            progress=False)  # fmt: skip
    history = trainer.train(loader, loader, epochs=1)
    assert trainer.step == 2 and all(map(torch.isfinite, map(torch.tensor, history.train)))
    changed = [not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True)]
    assert sum(changed) >= len(changed) // 2, name


def test_cosine_schedule_sets_the_learning_rate_of_each_step() -> None:
    model = nn.Linear(8, 8)
    optimizer = torch.optim.SGD(
        [{"params": [model.weight], "lr": 0.1}, {"params": [model.bias], "lr": 0.01}]
    )
    trainer = MemoryTrainer(model, optimizer, nn.MSELoss(), "cpu", progress=False,
                            lr_schedule="cosine", lr_final_ratio=0.5)  # fmt: skip
    seen: list[tuple[float, float]] = []
    optimizer.register_step_pre_hook(
        lambda opt, *_: seen.append(tuple(g["lr"] for g in opt.param_groups))
    )
    trainer.train(delayed_bits(32, 1), epochs=2)  # 4 steps: factors 1, 0.875, 0.625, 0.5
    factors = [1.0, 0.875, 0.625, 0.5]
    assert [lr for pair in seen for lr in pair] == pytest.approx(
        [lr for f in factors for lr in (0.1 * f, 0.01 * f)]
    )


def test_step_schedule_decays_the_learning_rate_every_k_steps() -> None:
    model = nn.Linear(8, 8)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    trainer = MemoryTrainer(model, optimizer, nn.MSELoss(), "cpu", progress=False,
                            lr_schedule="step", lr_step_every=3, lr_step_factor=0.5)  # fmt: skip
    seen: list[float] = []
    optimizer.register_step_pre_hook(lambda opt, *_: seen.append(opt.param_groups[0]["lr"]))
    trainer.train(delayed_bits(32, 1), epochs=4)  # 8 steps
    assert seen == pytest.approx([0.1] * 3 + [0.05] * 3 + [0.025] * 2)


def test_progress_with_rich_and_in_a_notebook_with_tqdm(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    out = io.StringIO()
    console = Console(file=out, width=120, force_terminal=False)
    model = nn.Linear(8, 8)
    MemoryTrainer(model, torch.optim.Adam(model.parameters()), nn.BCEWithLogitsLoss(), "cpu",
                  console=console).train(delayed_bits(32), delayed_bits(16), epochs=2)  # fmt: skip
    text = out.getvalue()
    assert "epoch 1/2: train loss" in text and "epoch 2/2" in text and "val loss" in text

    calls: list[tuple[str, object]] = []

    class FakeTqdm:
        def __init__(self, total: int, initial: int, unit: str) -> None:
            calls.append(("open", total))
            self.n = initial

        def update(self, n: int) -> None:
            self.n += n

        def set_postfix(self, fields: dict, refresh: bool) -> None:
            calls.append(("postfix", dict(fields)))

        def close(self) -> None:
            calls.append(("close", self.n))

        @staticmethod
        def write(message: str) -> None:
            calls.append(("write", message))

    fake = types.ModuleType("tqdm.auto")
    fake.tqdm = FakeTqdm  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tqdm", types.ModuleType("tqdm"))
    monkeypatch.setitem(sys.modules, "tqdm.auto", fake)
    monkeypatch.setattr("nma.progress.in_notebook", lambda: True)
    MemoryTrainer(model, torch.optim.Adam(model.parameters()), nn.BCEWithLogitsLoss(),
                  "cpu").train(delayed_bits(32), delayed_bits(16), epochs=2)  # fmt: skip
    assert calls[0] == ("open", 4) and calls[-1] == ("close", 4)
    writes = [m for kind, m in calls if kind == "write"]
    assert len(writes) == 2 and writes[0].startswith("epoch 1/2: train loss")
    assert any(kind == "postfix" and "val_loss" in m for kind, m in calls)  # type: ignore[operator]


def test_no_progress_prints_nothing_even_on_a_given_console() -> None:
    out = io.StringIO()
    model = nn.Linear(8, 8)
    trainer = MemoryTrainer(model, torch.optim.Adam(model.parameters()), nn.BCEWithLogitsLoss(),
                            "cpu", progress=False, console=Console(file=out))  # fmt: skip
    trainer.train(delayed_bits(16), epochs=1)
    assert out.getvalue() == ""
