"""A tiny learnable problem and a plain PyTorch training loop for the API tests."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset


def delayed_bits(size: int = 64, length: int = 6, width: int = 8, seed: int = 0) -> DataLoader:
    """Sequences of sparse random bits ``(B, T, width)``; the target at step ``t`` is the
    input at step ``t - 1`` (zeros at the first step). Batch-first, batches of 16."""
    generator = torch.Generator().manual_seed(seed)
    inputs = (torch.rand(size, length, width, generator=generator) < 0.25).float()
    targets = torch.cat([torch.zeros_like(inputs[:, :1]), inputs[:, :-1]], dim=1)
    loader_generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        TensorDataset(inputs, targets), batch_size=16, shuffle=True, generator=loader_generator
    )


def train_losses(
    forward: Callable[[Tensor], Tensor], parameters: list[nn.Parameter], epochs: int = 4
) -> list[float]:
    """Adam (lr 1e-2) on the binary cross-entropy of ``forward(inputs)`` (logits,
    batch-first) against the targets of :func:`delayed_bits`; the loss of every step."""
    optimizer = torch.optim.Adam(parameters, lr=1e-2)
    criterion = nn.BCEWithLogitsLoss()
    losses = []
    for _ in range(epochs):
        for inputs, targets in delayed_bits():
            optimizer.zero_grad()
            loss = criterion(forward(inputs), targets)
            loss.backward()
            nn.utils.clip_grad_norm_(parameters, 10.0)
            optimizer.step()
            losses.append(loss.item())
    return losses


def went_down(losses: list[float]) -> bool:
    """The mean of the last three losses is below 90% of the first three's."""
    return sum(losses[-3:]) < 0.9 * sum(losses[:3])
