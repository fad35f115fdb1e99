"""The optimiser a run trains with, chosen by ``train.optimizer``."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from nma.config import TrainConfig


def build_optimizer(
    cfg: TrainConfig, parameters: Iterable[nn.Parameter], lr: float | torch.Tensor
) -> torch.optim.Optimizer:
    """``adam``: AdamW (Loshchilov & Hutter 2019) with ``weight_decay`` (plain Adam at
    0), capturable when the run replays steps from CUDA graphs (``lr`` is then a
    tensor). ``sgd``: stochastic gradient descent with ``momentum``; its
    ``weight_decay`` adds ``weight_decay * p`` to each gradient, which without momentum
    is the same step as AdamW's decoupled decay.

    The learning rate set here is the schedule's peak; the trainer sets every step's
    own (:func:`nma.trainer.learning_rate`).
    """
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            parameters, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    return torch.optim.AdamW(
        parameters,
        lr=lr,
        weight_decay=cfg.weight_decay,  # 0: the same steps as Adam
        capturable=cfg.cuda_graph,
    )
