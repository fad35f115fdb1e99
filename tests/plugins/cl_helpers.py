"""A tiny model and task for checking the continual-learning regularizers by hand.

The model maps each step's input ``x (2,)`` to one output ``y = w·x + b``; the task's
loss is the mean squared error at the scored steps, so per-sequence gradients have
a closed form: ``∂ℓ/∂w = 2 (y - t) x``, ``∂ℓ/∂b = 2 (y - t)`` (one scored step).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nma import Batch, Options, Task


class TinyModel(nn.Module):
    """``y_t = w·x_t + b`` per step; returns ``(outputs, None)`` like a MemoryModel."""

    def __init__(self, w: list[float], b: float) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 1)
        with torch.no_grad():
            self.linear.weight.copy_(torch.tensor([w]))
            self.linear.bias.fill_(b)

    def forward(self, inputs: Tensor) -> tuple[Tensor, None]:
        return self.linear(inputs), None


class SquaredErrorTask(Task):
    """Mean squared error over the scored steps."""

    def __init__(self) -> None:
        super().__init__(Options())
        self.input_size, self.output_size = 2, 1

    def loss(self, outputs: Tensor, batch: Batch) -> Tensor:
        err = (outputs - batch.targets).pow(2).squeeze(-1) * batch.mask
        return err.sum() / batch.mask.sum()


def one_step_batch(xs: list[list[float]], ts: list[float]) -> Batch:
    """Sequences of one scored step: inputs ``(1, B, 2)``, targets ``(1, B, 1)``."""
    inputs = torch.tensor(xs).unsqueeze(0)
    targets = torch.tensor(ts).view(1, -1, 1)
    return Batch(inputs, targets, torch.ones(1, len(ts)))
