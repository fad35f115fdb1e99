"""Bad arguments to MemoryTrainer give one-paragraph nma.UsageErrors, before training."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from nma import MemoryTrainer, UsageError
from nma.checkpoint import Checkpoint, save_checkpoint
from nma.training import classification_accuracy, last_step

MODEL = nn.Linear(4, 2)
DATA = TensorDataset(torch.randn(8, 4), torch.randint(0, 2, (8,)))


def build(**changes: object) -> MemoryTrainer:
    arguments: dict = {
        "model": MODEL,
        "optimizer": torch.optim.SGD(MODEL.parameters(), lr=0.1),
        "criterion": nn.CrossEntropyLoss(),
        "device": "cpu",
        "progress": False,
    }
    arguments.update(changes)
    return MemoryTrainer(**arguments)


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"model": "ntm"}, "model must be a torch nn.Module"),
        ({"optimizer": None}, "optimizer must be a torch.optim.Optimizer"),
        ({"optimizer": torch.optim.SGD(nn.Linear(4, 2).parameters(), lr=0.1)}, "not \\(all\\)"),
        ({"criterion": "cross-entropy"}, "criterion must be callable"),
        ({"output": 3}, "output must be a function"),
        ({"grad_clip": -1.0}, "grad_clip must be a number at least 0"),
        ({"lr_schedule": "linear"}, "lr_schedule must be one of constant, cosine, step"),
        ({"lr_step_every": 0}, "lr_step_every must be a whole number of at least 1"),
        ({"lr_step_factor": 1.5}, "lr_step_factor must be a number between 0.0 and 1.0"),
        ({"lr_final_ratio": 2.0}, "lr_final_ratio must be a number between 0.0 and 1.0"),
        ({"patience": 0}, "patience must be a whole number of at least 1"),
        ({"patience": True}, "patience must be"),
        ({"min_delta": -0.1}, "min_delta must be"),
        ({"checkpoint_every": -1}, "checkpoint_every must be"),
        ({"keep_checkpoints": 0}, "keep_checkpoints must be"),
        ({"device": "tpu"}, "Unknown device 'tpu'"),
        ({"device": 3}, "device must be"),
        ({"regularizers": ["si", "si"]}, "given twice"),
    ],
)
def test_bad_constructor_arguments(changes: dict, fragment: str) -> None:
    with pytest.raises(UsageError, match=fragment) as error:
        build(**changes)
    assert "\n" not in str(error.value)


def test_missing_cuda_is_a_clear_error() -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(UsageError, match="sees no CUDA device"):
        build(device="cuda")


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        ({"epochs": 0}, "epochs must be a whole number"),
        ({"epochs": 1.5}, "epochs must be a whole number"),
        ({"train_loader": torch.randn(8, 4)}, "train_loader must be a DataLoader"),
        ({"train_loader": 5}, "train_loader must be a DataLoader"),
        ({"train_loader": DataLoader(torch.randn(8, 4), batch_size=4)}, "yielded a Tensor"),
        ({"train_loader": [{"x": torch.randn(2, 4)}]}, "yielded a dict with keys \\['x'\\]"),
        ({"train_loader": [(torch.randn(2, 4), torch.zeros(3))]}, "of the same size"),
        ({"train_loader": [(torch.randn(2, 4), [0, 1])]}, "pairs of tensors"),
        ({"train_loader": []}, "yielded no batch"),
        ({"val_loader": []}, "evaluation DataLoader yielded no batch"),
        ({"resume": True}, "has none"),
        ({"resume": 1}, "resume must be"),
    ],
)
def test_bad_train_arguments(call: dict, fragment: str) -> None:
    arguments: dict = {"train_loader": DataLoader(DATA, batch_size=4), "epochs": 1}
    arguments.update(call)
    with pytest.raises(UsageError, match=fragment):
        build().train(**arguments)


def test_patience_needs_a_validation_loader() -> None:
    with pytest.raises(UsageError, match="pass a val_loader"):
        build(patience=2).train(DataLoader(DATA, batch_size=4))


def test_outputs_that_the_criterion_cannot_score() -> None:
    class Pair(nn.Module):
        def forward(self, x: torch.Tensor) -> dict:
            return {"logits": x}

    model = Pair()
    model.weight = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(UsageError, match="not a tensor"):
        build(model=model, optimizer=optimizer).train(DataLoader(DATA, batch_size=4))
    with pytest.raises(UsageError, match="last_step expects"):
        build(output=last_step).train(DataLoader(DATA, batch_size=4))
    with pytest.raises(UsageError, match="differ"):
        classification_accuracy(torch.randn(4, 3, 2), torch.zeros(4, dtype=torch.long))


def test_checkpoint_folder_mistakes(tmp_path: Path) -> None:
    loader = DataLoader(DATA, batch_size=4)
    build(checkpoint_dir=tmp_path / "a").train(loader)
    with pytest.raises(UsageError, match="already holds checkpoints"):
        build(checkpoint_dir=tmp_path / "a").train(loader)
    other = nn.Linear(4, 3)
    with pytest.raises(UsageError, match="does not fit this trainer's model"):
        build(model=other, optimizer=torch.optim.SGD(other.parameters(), lr=0.1),
              checkpoint_dir=tmp_path / "a").train(loader, resume=True)  # fmt: skip
    foreign = tmp_path / "run" / "step-00000001.safetensors"
    save_checkpoint(Checkpoint(1, MODEL.state_dict(), {}, extra={"last_eval_step": 1}), foreign)
    with pytest.raises(UsageError, match="not written by a MemoryTrainer"):
        build().train(loader, resume=foreign)
    with pytest.raises(UsageError, match="does not exist"):
        build().train(loader, resume=tmp_path / "missing.safetensors")
