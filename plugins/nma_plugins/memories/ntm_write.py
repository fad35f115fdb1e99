"""The Neural Turing Machine's write, shared by the memories that use it.

Graves, Wayne & Danihelka (2014), "Neural Turing Machines", arXiv:1410.5401,
eqs. 3-4 and the closing remark of section 3.2: with several write heads the
erasures multiply and the additions add, so their order does not matter.
"""

from __future__ import annotations

import torch
from torch import Tensor


def erase_add(memory: Tensor, weights: Tensor, erase: Tensor, add: Tensor) -> Tensor:
    """The NTM write for several heads at once (eqs. 3-4 and section 3.2).

    ``M' = M o prod_h (1 - w_h e_h^T) + sum_h w_h a_h^T``; returns ``M'`` and the keep
    factor ``prod_h (1 - w_h e_h^T)``.

    Args:
        memory: ``(B, N, W)``.
        weights: ``(B, H, N)`` the heads' write weightings.
        erase: ``(B, H, W)`` erase vectors in ``[0, 1]``.
        add: ``(B, H, W)`` add vectors.

    Returns:
        ``(new_memory, keep)``, both ``(B, N, W)``.
    """
    keep = 1 - weights[:, 0].unsqueeze(-1) * erase[:, 0].unsqueeze(-2)
    # a loop over a handful of heads: torch.prod's backward may synchronise on CUDA
    for head in range(1, weights.shape[1]):
        keep = keep * (1 - weights[:, head].unsqueeze(-1) * erase[:, head].unsqueeze(-2))
    return memory * keep + torch.matmul(weights.transpose(-1, -2), add), keep
