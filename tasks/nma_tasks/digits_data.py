"""scikit-learn's bundled handwritten digits (8×8, 1,797 images, no download), with a
fixed stratified split into training and held-out images."""

from __future__ import annotations

from functools import lru_cache

import torch
from torch import Tensor

CLASSES = 10
SIDE = 8


@lru_cache(maxsize=1)
def load_digits() -> tuple[Tensor, Tensor]:
    """Images ``(N, 8, 8)`` scaled from 0..16 to [0, 1] (float32) and labels ``(N,)``."""
    from sklearn.datasets import load_digits as sklearn_digits

    data = sklearn_digits()
    images = torch.tensor(data.images, dtype=torch.float32) / 16.0
    labels = torch.tensor(data.target, dtype=torch.int64)
    return images, labels


def split_indices(labels: Tensor, test_fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """Training and held-out indices: for each class, a ``test_fraction`` share of
    its images (rounded) drawn with ``seed`` is held out. Both sorted."""
    gen = torch.Generator().manual_seed(seed)
    train, test = [], []
    for label in range(CLASSES):
        members = (labels == label).nonzero().squeeze(1)
        order = members[torch.randperm(len(members), generator=gen)]
        held = round(len(members) * test_fraction)
        test.append(order[:held])
        train.append(order[held:])
    return torch.cat(train).sort().values, torch.cat(test).sort().values
