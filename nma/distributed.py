"""Multi-process training with ``torchrun`` and DistributedDataParallel.

``torchrun --nproc-per-node N -m nma run ...`` starts N processes with the
variables ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` set; :func:`setup` joins
them into one process group (NCCL on CUDA, gloo on the CPU). Each rank draws its
own training data, gradients are averaged by DDP, and rank 0 alone evaluates,
writes the run directory and checkpoints. No home-made communication layer:
``torch.distributed`` does all of it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    """Where this process stands among the run's processes."""

    rank: int = 0
    local_rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that evaluates and writes."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """More than one process."""
        return self.size > 1


def launched_world() -> World:
    """The world ``torchrun`` describes in the environment (one process if none)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    return World(
        rank=int(os.environ.get("RANK", "0")),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
        size=size,
    )


def setup(world: World, device: torch.device) -> None:
    """Join the process group (once per process)."""
    if world.distributed and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)


def teardown(wait: bool = True) -> None:
    """Leave the process group.

    Rank 0 finishes later than the others (it evaluates and writes); a rank that
    destroyed its process group while a peer still used the connection could abort
    in gloo's teardown, so after a run that ended alike on every rank (``wait``)
    every rank meets at a barrier first. After a failure on one rank the others
    are not coming: no barrier, and ``torchrun`` stops them.
    """
    if dist.is_initialized():
        try:
            if wait:
                dist.barrier()
        finally:
            dist.destroy_process_group()


def broadcast(value: Any, world: World) -> Any:
    """Rank 0's ``value`` on every rank (any picklable Python object)."""
    if not world.distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def any_rank(flag: bool, world: World, device: torch.device) -> bool:
    """Whether ``flag`` is true on at least one rank (a collective: every rank calls it)."""
    if not world.distributed:
        return flag
    tensor = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item() > 0)
