"""The diagonal of the empirical Fisher information, per parameter."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from nma import Batch, Task
from nma_plugins.regularizers.anchors import zeros_like_params
from nma_plugins.regularizers.samples import (
    first_sequences,
    single_sequences,
    task_loss,
    tracked,
)


def diagonal_fisher(
    model: nn.Module, task: Task | None, batches: Iterable[Batch], samples: int
) -> dict[str, Tensor]:
    """``F_i = (1/N) Σ_n (∂ℓ_n/∂θ_i)²`` over the first ``N = samples`` sequences of
    ``batches``, where ``ℓ_n`` is the task's loss on sequence ``n`` alone (its negative
    log-likelihood at the observed targets: the empirical Fisher, the diagonal used
    by Kirkpatrick et al. 2017, §2.1 and eq. 3). Gradients are taken one sequence at a
    time: the square of a batch's mean gradient would not be this quantity."""
    params = tracked(model)
    fisher = zeros_like_params(model)
    data = first_sequences(batches, samples)
    count = 0
    for sequence in single_sequences(data):
        grads = torch.autograd.grad(
            task_loss(model, task, sequence), list(params.values()), allow_unused=True
        )
        for name, g in zip(params, grads, strict=True):
            if g is not None:
                fisher[name] += g.detach().pow(2)
        count += 1
    return {n: f / max(count, 1) for n, f in fisher.items()}
