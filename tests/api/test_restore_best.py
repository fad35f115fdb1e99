"""``MemoryTrainer(restore_best=True)``: the weights of the best validation epoch are
put back at the end, also after an early stop and after resuming from a checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from nma import MemoryTrainer, UsageError
from nma.checkpoint import list_checkpoints, load_checkpoint
from tests.api.training import delayed_bits


class SnapshotLoss(nn.Module):
    """Binary cross-entropy in training; in evaluation the next value of ``script``,
    and a copy of ``model``'s weights as they were at that validation."""

    def __init__(self, script: list[float], model: nn.Module) -> None:
        super().__init__()
        self.script, self.model = list(script), [model]
        self.snapshots: list[dict[str, Tensor]] = []

    def forward(self, outputs: Tensor, targets: Tensor) -> Tensor:
        if torch.is_grad_enabled():
            return nn.functional.binary_cross_entropy_with_logits(outputs, targets)
        self.snapshots.append({k: v.clone() for k, v in self.model[0].state_dict().items()})
        return outputs.new_tensor(self.script.pop(0))


VAL = DataLoader(TensorDataset(torch.zeros(4, 8), torch.zeros(4, 8)), batch_size=4)


def trainer(script: list[float], **options: object) -> tuple[MemoryTrainer, SnapshotLoss]:
    torch.manual_seed(0)
    model = nn.Linear(8, 8)
    loss = SnapshotLoss(script, model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    return MemoryTrainer(model, optimizer, loss, "cpu", progress=False, **options), loss


def weights(model: nn.Module) -> dict[str, Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def same(a: dict[str, Tensor], b: dict[str, Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    ("script", "patience", "best"),
    [
        ([5.0, 3.0, 4.0, 4.5, 1.0], 2, 1),  # early stop after epoch 4; epoch 2 was best
        ([5.0, 3.0, 4.0, 2.0, 2.5], None, 3),  # all five epochs; epoch 4 was best
    ],
)
def test_the_best_epochs_weights_are_restored(
    script: list[float], patience: int | None, best: int
) -> None:
    trained, loss = trainer(script, patience=patience, restore_best=True)
    history = trained.train(delayed_bits(16, 1), VAL, epochs=5)
    assert history.best_epoch == best
    assert same(weights(trained.model), loss.snapshots[best])
    assert not same(weights(trained.model), loss.snapshots[-1])  # it did move after the best

    plain, plain_loss = trainer(script, patience=patience)
    plain.train(delayed_bits(16, 1), VAL, epochs=5)
    assert same(weights(plain.model), plain_loss.snapshots[-1])  # off: the last weights


def test_a_resumed_training_restores_the_same_best_weights(tmp_path: Path) -> None:
    script = [5.0, 3.0, 4.0, 4.5, 4.2]
    whole, loss = trainer(
        script, restore_best=True, checkpoint_dir=tmp_path / "a", keep_checkpoints=5
    )
    whole.train(delayed_bits(16, 1), VAL, epochs=5)
    expected = weights(whole.model)
    assert same(expected, loss.snapshots[1])

    path = list_checkpoints(tmp_path / "a")[2][1]  # after epoch 3: the best was epoch 2
    assert load_checkpoint(path).tensors.keys() == {"best/weight", "best/bias"}
    resumed, _ = trainer(script[3:], restore_best=True, checkpoint_dir=tmp_path / "b")
    resumed.train(delayed_bits(16, 1), VAL, epochs=5, resume=path)
    assert same(weights(resumed.model), expected)


def test_restore_best_needs_a_validation_loader() -> None:
    trained, _ = trainer([1.0], restore_best=True)
    with pytest.raises(UsageError, match="restore_best=True .* pass a val_loader"):
        trained.train(delayed_bits(16, 1), epochs=2)
