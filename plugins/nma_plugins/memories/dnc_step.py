"""One whole DNC memory step as a single autograd node with a hand-written backward.

Graves et al. (2016), "Hybrid computing using a neural network with dynamic external
memory", Nature 538, 471-476, Methods. The step is the one
:meth:`nma_plugins.memories.dnc.DNCMemory.forward_reference` computes through the
composable functions of :mod:`.dnc`, :mod:`.dnc_allocation` and :mod:`.dnc_linkage`
with ``content`` addressing (that path stays the reference implementation). There,
autograd records about 110 operations per step and replays their backward nodes; here
the step is one node whose forward runs about 80 operations without recording and
whose backward applies the chain rule written out below (about 200 operations, none
recorded).

Forward ("Interface parameters" to "Read weighting"; ``o`` is the elementwise
product, ``C`` the content lookup of :mod:`nma_plugins.addressing.content_fused`):

    (F1)  beta^{r,i} = 1 + softplus(x), beta^w = 1 + softplus(x)       key strengths
          e, f^i, g^a, g^w = sigmoid(x),   pi^i = softmax(x)          gates and modes
    (F2)  k_i    = 1 - f^i w^{r,i}_{t-1}                               per-head factor
          psi    = prod_i k_i                                          retention
    (F3)  u^_t   = u_{t-1} + w^w_{t-1} - u_{t-1} o w^w_{t-1}
          u_t    = u^_t o psi                                          usage
    (F4)  s, phi = sort(u_t) (stable),   l_j = log max(s_j, eps)
          E_j    = exp(sum_{i<j} l_i),   a~_j = (1 - s_j) E_j,   a[phi_j] = a~_j
                                                                       allocation
    (F5)  c^w    = C(M_{t-1}, k^w, beta^w)                             write content
    (F6)  q      = g^a a + (1 - g^a) c^w,   w = g^w q                  write weighting
    (F7)  M_t    = M_{t-1} o (E - w e^T) + w v^T                       erase and add
    (F8)  L_t    = (1 - w 1^T - 1 w^T) o L_{t-1} + w p_{t-1}^T, zero diagonal
          p_t    = (1 - sum_i w_i) p_{t-1} + w                         link, precedence
    (F9)  f^i    = L_t w^{r,i}_{t-1},   b^i = L_t^T w^{r,i}_{t-1}      directions
    (F10) c^{r,i} = C(M_t, k^{r,i}, beta^{r,i})                        read content
    (F11) w^{r,i} = pi^i_1 b^i + pi^i_2 c^{r,i} + pi^i_3 f^i           read weighting
    (F12) r^i    = M_t^T w^{r,i}                                       reads

(``E`` in (F7) is the all-ones ``N x W`` matrix, ``E_j`` in (F4) the exclusive
product.) The sort's indices ``phi`` are constants, as for autograd. (F7) is computed
as ``M_t = M_{t-1} + w o Y`` with ``Y = 1 v^T - M_{t-1} o (1 e^T)`` (row ``i`` of ``Y``
scaled by ``w_i``), and (F8) as ``L_{t-1} + w o (1 p^T - L_{t-1})`` (a ``lerp``) minus
``L_{t-1} o (1 w^T)``, the same values to rounding.

Backward. ``g_X`` is the gradient of the loss at ``X``; the gradients arriving from
outside are those at the seven outputs (``r``, ``M_t``, ``u_t``, ``L_t``, ``p_t``,
``w^r``, ``w``), each possibly absent (zero). Going through the forward in reverse:

    (B12) g_{w^r} += g_r M_t^T,                 g_{M_t} += w^{r T} g_r
    (B11) g_{pi^i_1} = g_{w^{r,i}} . b^i  (likewise c^{r,i}, f^i),
          g_{b^i} = pi^i_1 g_{w^{r,i}},  g_{c^{r,i}} = pi^i_2 g_{w^{r,i}},
          g_{f^i} = pi^i_3 g_{w^{r,i}}
    (B10) g_{k^r}, g_{beta^r}, g_{M_t} += content_backward(g_{c^r})
    (B9)  g_{w^r_{t-1}} = g_f L_t + g_b L_t^T   (rows: heads), computed from L_{t-1}
          through L_t = L_{t-1} o D + w p_{t-1}^T - diag(w o p_{t-1}) (both diagonals
          zero, D = 1 - w 1^T - 1 w^T), so that L_t is not needed in the backward:
            g_f L_t   = (g_f L_{t-1}) o (1 - w) - (g_f o w) L_{t-1}
                        + (g_f . w) p_{t-1} - g_f o w o p_{t-1}
            g_b L_t^T = (g_b L_{t-1}^T) o (1 - w) - (g_b o w) L_{t-1}^T
                        + (g_b . p_{t-1}) w - g_b o w o p_{t-1}
          G = g_{L_t} + g_f^T w^r_{t-1} + w^{r T}_{t-1} g_b, then G_ii = 0
          (L_t's diagonal is the constant 0). With A = [g_f; w^r_{t-1}] and
          C = [w^r_{t-1}; g_b] (2R x N each) the second part is the rank-2R A^T C,
          and G is never built: every use of it below is g_{L_t}'s plus A^T C's,
          with ``d = diag(g_{L_t}) + sum_m A_m o C_m`` the diagonal left out:
            G p               = g_{L_t} p + A^T (C p) - d o p_{t-1}
            G^T w             = g_{L_t}^T w + C^T (A w) - d o w
            rowsum(G o L_{t-1}) = rowsum(g_{L_t} o L_{t-1}) + sum_m A_m o (C_m L_{t-1}^T)
            colsum(G o L_{t-1}) = colsum(g_{L_t} o L_{t-1}) + sum_m C_m o (A_m L_{t-1})
    (B8)  g_{L_{t-1}} = G o (1 - w 1^T - 1 w^T)
                      = g_{L_t} o D + [A o (1-w)^T; -A]^T [C; C o w^T],  zero diagonal
          g_w[k]      = sum_j G[k,j] (p_{t-1}[j] - L_{t-1}[k,j]) - sum_i G[i,k] L_{t-1}[i,k]
          g_{p_{t-1}} = G^T w + (1 - sum_i w_i) g_{p_t}
          g_w        += g_{p_t} - (g_{p_t} . p_{t-1}) 1
          (L_{t-1} has a zero diagonal, as every link matrix of the state.)
    (B7)  g_{M_{t-1}} = g_{M_t} o (E - w e^T)
          g_w[i]     += sum_j g_{M_t}[i,j] (v_j - M_{t-1}[i,j] e_j) = sum_j g_{M_t}[i,j] Y[i,j]
          g_e         = -w^T (g_{M_t} o M_{t-1}),    g_v = w^T g_{M_t}
    (B6)  g_{g^w} = g_w . q,  g_q = g^w g_w,  g_{g^a} = g_q . (a - c^w),
          g_a = g^a g_q,  g_{c^w} = (1 - g^a) g_q
    (B5)  g_{k^w}, g_{beta^w}, g_{M_{t-1}} += content_backward(g_{c^w})
    (B4)  g~_j = g_a[phi_j]
          g_{s_j} = -E_j g~_j + [s_j >= eps] / max(s_j, eps) sum_{k>j} g~_k a~_k
          g_{u_t}[phi_j] += g_{s_j}
          (dE_k / dl_j = E_k for j < k, dl_j / ds_j = [s_j >= eps] / max(s_j, eps), the
          clamp's and the logarithm's derivatives; ``a~_k = (1 - s_k) E_k``. The sum
          over ``k > j`` is a reversed cumulative sum of its own terms, so no product
          is ever divided by a usage: a usage of 0 or below ``eps`` only zeroes its
          term, and ties need nothing, the order being fixed.)
    (B3)  g_{u^} = g_{u_t} o psi,  g_psi = g_{u_t} o u^,
          g_{u_{t-1}} = g_{u^} o (1 - w^w_{t-1}),  g_{w^w_{t-1}} = g_{u^} o (1 - u_{t-1})
    (B2)  g_{k_i} = g_psi o prod_{h != i} k_h       (the product of the other heads'
          factors, taken directly, never as psi / k_i, so a zero factor is safe)
          g_{f^i} = -g_{k_i} . w^{r,i}_{t-1},   g_{w^{r,i}_{t-1}} += -f^i g_{k_i}
    (B1)  softplus'(x) = sigmoid(x) (1 above torch's threshold of 20),
          sigmoid'(x) = s (1 - s), and the softmax rule
          g_x = pi o (g_pi - (g_pi . pi)).

Memory: besides vectors of ``B N`` or ``B R N`` values and ``B x N x W`` tensors, the
only ``N x N`` tensor saved is ``L_{t-1}``, the input, alive anyway as the previous state
((B9) does without ``L_t``, so under activation checkpointing the last step of a chunk
keeps no recomputed ``L_t``); the backward builds one ``N x N`` buffer, first holding
``g_{L_t} o L_{t-1}`` for its row and column sums and then ``g_{L_{t-1}}``. Every
product with an ``N x N`` matrix has the few rows on the left (``X L`` or ``X L^T``),
its fast orientation on the CPU.

Shapes use ``B`` for the batch, ``N`` for slots, ``W`` for the slot width and ``R``
for read heads; the interface is laid out as in :class:`.dnc.DNCMemory` with
``content`` addressing (``interface_size = R W + 3 W + 5 R + 3``).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from nma_plugins.addressing.content_fused import (
    ContentSaved,
    content_backward,
    content_forward,
    softmax_backward,
)
from nma_plugins.memories.dnc_step_native import NativeDNCStep
from nma_plugins.native import use_native

SOFTPLUS_THRESHOLD = 20.0
"""``torch.nn.functional.softplus``'s default: above it, softplus is the identity."""


class StepSaved(NamedTuple):
    """What :meth:`DNCStep.backward` needs, saved with ``save_for_backward``.

    Attributes:
        raw_strengths: ``(B, R + 1, 1)`` the strengths before ``oneplus`` (read heads,
            then the write head).
        gates: ``(B, 2W + R + 2)`` the sigmoid of the interface from the erase vector
            to the write gate: ``e``, (an unused sigmoid of ``v``), ``f``, ``g^a``, ``g^w``.
        modes: ``(B, R, 3)`` the read modes ``pi``.
        memory: ``(B, N, W)`` ``M_{t-1}``.
        new_memory: ``(B, N, W)`` ``M_t``.
        update: ``(B, N, W)`` ``Y = 1 v^T - M_{t-1} o (1 e^T)``, so that ``M_t = M_{t-1}
            + w o Y`` (each row ``i`` scaled by ``w_i``).
        usage: ``(B, N)`` ``u_{t-1}``.
        prev_write: ``(B, N)`` ``w^w_{t-1}``.
        prev_read: ``(B, R, N)`` ``w^r_{t-1}``.
        precedence: ``(B, 1, N)`` ``p_{t-1}``.
        link: ``(B, N, N)`` ``L_{t-1}``.
        kept: ``(B, R, N)`` ``k_i = 1 - f^i w^{r,i}_{t-1}``.
        psi: ``(B, N)`` the retention.
        usage_hat: ``(B, N)`` ``u^_t``.
        sorted_usage: ``(B, N)`` ``s``.
        clamped: ``(B, N - 1)`` ``max(s_j, eps)`` for ``j < N - 1``.
        free_list: ``(B, N)`` ``phi`` (int64).
        exclusive: ``(B, N)`` ``E``.
        sorted_allocation: ``(B, N)`` ``a~``.
        allocation: ``(B, N)`` ``a``.
        mixed: ``(B, N)`` ``q = g^a a + (1 - g^a) c^w``.
        write: ``(B, 1, N)`` ``w``.
        write_column: ``(B, N, 1)`` ``w``.
        erase: ``(B, 1, W)`` ``e``.
        backward_dir: ``(B, R, N)`` ``b^i``.
        forward_dir: ``(B, R, N)`` ``f^i``.
        read: ``(B, R, N)`` ``w^r``.
        write_content: the write head's :class:`ContentSaved`.
        read_content: the read heads' :class:`ContentSaved`.
    """

    raw_strengths: Tensor
    gates: Tensor
    modes: Tensor
    memory: Tensor
    new_memory: Tensor
    update: Tensor
    usage: Tensor
    prev_write: Tensor
    prev_read: Tensor
    precedence: Tensor
    link: Tensor
    kept: Tensor
    psi: Tensor
    usage_hat: Tensor
    sorted_usage: Tensor
    clamped: Tensor
    free_list: Tensor
    exclusive: Tensor
    sorted_allocation: Tensor
    allocation: Tensor
    mixed: Tensor
    write: Tensor
    write_column: Tensor
    erase: Tensor
    backward_dir: Tensor
    forward_dir: Tensor
    read: Tensor
    write_content: ContentSaved
    read_content: ContentSaved


def exclusive_head_products(kept: Tensor) -> Tensor:
    """``out[:, i] = prod_{h != i} kept[:, h]``, without division (zeros are safe).

    Args:
        kept: ``(B, R, N)`` factors.

    Returns:
        ``(B, R, N)`` the product of the other heads' factors (1 when ``R = 1``).
    """
    r = kept.shape[1]
    if r == 1:
        return torch.ones_like(kept)
    if r == 2:
        return kept.flip(1)
    eye = torch.eye(r, dtype=torch.bool, device=kept.device).unsqueeze(-1)  # (R, R, 1)
    # others[b, i, h, n] = kept[b, h, n] for h != i, else 1.
    return torch.where(eye, 1.0, kept.unsqueeze(1)).prod(dim=2)


def _forward(
    interface: Tensor,
    memory: Tensor,
    usage: Tensor,
    link: Tensor,
    precedence: Tensor,
    prev_read: Tensor,
    prev_write: Tensor,
    read_eps: float,
    write_eps: float,
    usage_eps: float,
) -> tuple[tuple[Tensor, ...], StepSaved]:
    """(F1)-(F12) without autograd; returns the seven outputs and what backward needs."""
    b, n, width = memory.shape
    r = prev_read.shape[1]

    # (F1) Constraints. Each head's parameters are (key, strength); the write head last.
    raw_heads, raw_gates, raw_modes = interface.split(
        [(r + 1) * (width + 1), 2 * width + r + 2, 3 * r], dim=1
    )
    keys, raw_strengths = raw_heads.reshape(b, r + 1, width + 1).split([width, 1], dim=-1)
    strengths = F.softplus(raw_strengths).add_(1)  # (B, R + 1, 1)
    gates = torch.sigmoid(raw_gates)
    erase, _, free, allocation_gate, write_gate = gates.split([width, width, r, 1, 1], dim=1)
    values = raw_gates[:, width : 2 * width]
    modes = torch.softmax(raw_modes.reshape(b, r, 3), dim=-1)

    # (F2)-(F3) Retention and usage.
    kept = torch.addcmul(memory.new_ones(()), free.unsqueeze(-1), prev_read, value=-1)
    psi = kept.prod(dim=1) if r > 1 else kept[:, 0]  # (B, N)
    prev_w = prev_write[:, 0]
    usage_hat = torch.addcmul(usage + prev_w, usage, prev_w, value=-1)
    new_usage = usage_hat * psi

    # (F4) Allocation: exclusive products of the sorted usages, in log space.
    sorted_usage, free_list = torch.sort(new_usage, dim=-1, stable=True)
    clamped = sorted_usage[:, :-1].clamp_min(usage_eps)
    exclusive = F.pad(torch.log(clamped).cumsum_(-1), (1, 0)).exp_()  # E_0 = exp(0) = 1
    sorted_allocation = torch.rsub(sorted_usage, 1).mul_(exclusive)
    allocation = torch.empty_like(new_usage).scatter_(-1, free_list, sorted_allocation)

    # (F5)-(F7) Write weighting and write.
    write_content, write_saved = content_forward(
        keys[:, r:], strengths[:, r:], memory, write_eps
    )  # (B, 1, N)
    mixed = torch.lerp(write_content[:, 0], allocation, allocation_gate)  # q
    w = write_gate * mixed  # (B, N)
    w_col = w.unsqueeze(-1)
    erase_row = erase.unsqueeze(1)  # (B, 1, W)
    update = torch.mul(memory, erase_row).neg_().add_(values.unsqueeze(1))  # Y
    new_memory = torch.addcmul(memory, w_col, update)

    # (F8) Temporal link and precedence, the link built in one N x N buffer:
    # L + w_i (p_j - L_ij), then - w_j L_ij, then the diagonal.
    write = w.unsqueeze(1)  # (B, 1, N)
    p_row = precedence.unsqueeze(1)  # (B, 1, N)
    new_link = torch.lerp(link, p_row, w_col)
    new_link.addcmul_(link, write, value=-1)
    new_link.diagonal(dim1=-2, dim2=-1).zero_()
    new_precedence = torch.addcmul(w, torch.rsub(w.sum(-1, keepdim=True), 1), precedence)

    # (F9)-(F12) Directions, read content, read weightings, reads. Both directions are
    # rows times L_t (or its transposed view): a matrix times a few columns is several
    # times slower on the CPU.
    read_content, read_saved = content_forward(
        keys[:, :r], strengths[:, :r], new_memory, read_eps
    )  # (B, R, N)
    backward_dir = torch.bmm(prev_read, new_link)
    forward_dir = torch.bmm(prev_read, new_link.transpose(1, 2))
    mode_backward, mode_content, mode_forward = modes.split(1, dim=-1)  # (B, R, 1) each
    read = backward_dir * mode_backward
    read.addcmul_(mode_content, read_content).addcmul_(mode_forward, forward_dir)
    reads = torch.bmm(read, new_memory).view(b, r * width)

    outputs = (reads, new_memory, new_usage, new_link, new_precedence, read, write)
    saved = StepSaved(
        raw_strengths=raw_strengths,
        gates=gates,
        modes=modes,
        memory=memory,
        new_memory=new_memory,
        update=update,
        usage=usage,
        prev_write=prev_w,
        prev_read=prev_read,
        precedence=p_row,
        link=link,
        kept=kept,
        psi=psi,
        usage_hat=usage_hat,
        sorted_usage=sorted_usage,
        clamped=clamped,
        free_list=free_list,
        exclusive=exclusive,
        sorted_allocation=sorted_allocation,
        allocation=allocation,
        mixed=mixed,
        write=write,
        write_column=w_col,
        erase=erase_row,
        backward_dir=backward_dir,
        forward_dir=forward_dir,
        read=read,
        write_content=write_saved,
        read_content=read_saved,
    )
    return outputs, saved


def _flatten(saved: StepSaved) -> list[Tensor]:
    return [*saved[:-2], *saved.write_content, *saved.read_content]


def _unflatten(tensors: tuple[Tensor, ...]) -> StepSaved:
    k = len(StepSaved._fields) - 2
    c = len(ContentSaved._fields)
    return StepSaved(
        *tensors[:k],
        ContentSaved(*tensors[k : k + c]),
        ContentSaved(*tensors[k + c : k + 2 * c]),
    )


def _backward(
    saved: StepSaved,
    grad_reads: Tensor | None,
    grad_memory: Tensor | None,
    grad_usage: Tensor | None,
    grad_link: Tensor | None,
    grad_precedence: Tensor | None,
    grad_read: Tensor | None,
    grad_write: Tensor | None,
    usage_eps: float,
    needs_link_grad: bool,
) -> tuple[Tensor | None, ...]:
    """(B12)-(B1): the gradients at the interface and the seven state inputs."""
    b, n, width = saved.memory.shape
    r = saved.prev_read.shape[1]
    link, prev_read, write = saved.link, saved.prev_read, saved.write
    new_memory = saved.new_memory

    # (B12) Reads.
    if grad_reads is not None:
        g_r = grad_reads.reshape(b, r, width)
        if grad_read is None:
            g_read = torch.bmm(g_r, new_memory.transpose(1, 2))
        else:
            g_read = torch.baddbmm(grad_read, g_r, new_memory.transpose(1, 2))
        if grad_memory is None:
            g_mem = torch.bmm(saved.read.transpose(1, 2), g_r)
        else:
            g_mem = torch.baddbmm(grad_memory, saved.read.transpose(1, 2), g_r)
    else:
        g_read = grad_read if grad_read is not None else new_memory.new_zeros(b, r, n)
        g_mem = grad_memory if grad_memory is not None else new_memory.new_zeros(b, n, width)

    # (B11) Read weighting: modes and the three directions.
    directions = torch.stack(
        [saved.backward_dir, saved.read_content.weights, saved.forward_dir], dim=2
    )  # (B, R, 3, N)
    g_read_3 = g_read.unsqueeze(2)
    g_modes = (directions * g_read_3).sum(-1)  # (B, R, 3)
    g_back, g_read_content, g_fwd = (saved.modes.unsqueeze(-1) * g_read_3).unbind(2)

    # (B10) Read content on M_t.
    g_read_keys, g_read_strengths, g_mem_content = content_backward(
        g_read_content, saved.read_content
    )
    g_mem = g_mem + g_mem_content

    # (B9) Directions. G = g_{L_t} + A^T C (zero diagonal) is never built, and neither
    # g_{w^r_{t-1}} nor anything else needs L_t: every product is one with L_{t-1}, rows
    # on the left (see _forward): [g_f; w^r; g_f o w] L and [w^r; g_b; g_b o w] L^T.
    keep = torch.rsub(write, 1)  # (B, 1, N)
    g_fwd_w = g_fwd * write
    g_back_w = g_back * write
    left_rows = torch.cat([g_fwd, prev_read, g_fwd_w], dim=1)  # (B, 3R, N)
    right_rows = torch.cat([prev_read, g_back, g_back_w], dim=1)
    left = torch.bmm(left_rows, link)
    right = torch.bmm(right_rows, link.transpose(1, 2))
    a_rows, c_rows = left_rows[:, : 2 * r], right_rows[:, : 2 * r]  # A, C (B, 2R, N)
    p_row = saved.precedence  # (B, 1, N)
    # g_f L_t + g_b L_t^T with L_t = L_{t-1} o D + w p^T - diag(w o p).
    g_prev_read = (left[:, :r] + right[:, r : 2 * r]).mul_(keep)
    g_prev_read.sub_(left[:, 2 * r :]).sub_(right[:, 2 * r :])
    g_prev_read.addcmul_(g_fwd_w.sum(-1, keepdim=True), p_row)
    g_prev_read.addcmul_((g_back * p_row).sum(-1, keepdim=True), write)
    g_prev_read.addcmul_(g_fwd + g_back, write * p_row, value=-1)
    # G's diagonal, left out of every sum below: g_{L_t}[i,i] + sum_m A[m,i] C[m,i].
    g_diag = (a_rows * c_rows).sum(1)
    # (G p)^T and w^T G, rows (B, 1, N).
    g_p = torch.bmm(torch.bmm(p_row, c_rows.transpose(1, 2)), a_rows)
    w_g = torch.bmm(torch.bmm(write, a_rows.transpose(1, 2)), c_rows)
    # Row and column sums of G o L_{t-1} (L_{t-1} has a zero diagonal).
    row_gl = (right[:, : 2 * r] * a_rows).sum(1)
    col_gl = (left[:, : 2 * r] * c_rows).sum(1)
    buffer = None
    if grad_link is not None:
        g_diag += grad_link.diagonal(dim1=-2, dim2=-1)
        g_p.baddbmm_(p_row, grad_link.transpose(1, 2))
        w_g.baddbmm_(write, grad_link)
        buffer = torch.mul(grad_link, link)  # g_{L_t} o L_{t-1}
        row_gl += buffer.sum(-1)
        col_gl += buffer.sum(-2)
    g_w = torch.addcmul(g_p, g_diag.unsqueeze(1), p_row, value=-1)  # (G p)^T
    g_prev_precedence = w_g.addcmul_(write, g_diag.unsqueeze(1), value=-1)  # (G^T w)^T

    # (B8) Link and precedence.
    g_link = None
    if needs_link_grad:
        # g_{L_{t-1}} = g_{L_t} o D + A'^T C', in the buffer that held g_{L_t} o L_{t-1}.
        a_prime = torch.cat([a_rows * keep, a_rows.neg()], dim=1)  # (B, 4R, N)
        c_prime = torch.cat([c_rows, c_rows * write], dim=1)
        if grad_link is not None:
            g_link = torch.mul(grad_link, keep, out=buffer)
            g_link.addcmul_(saved.write_column, grad_link, value=-1)
            g_link.baddbmm_(a_prime.transpose(1, 2), c_prime)
        else:
            g_link = torch.bmm(a_prime.transpose(1, 2), c_prime)
        g_link.diagonal(dim1=-2, dim2=-1).zero_()
    del buffer
    g_w = g_w.squeeze(1).sub_(row_gl).sub_(col_gl)  # (B, N)
    g_prev_precedence = g_prev_precedence.squeeze(1)
    if grad_precedence is not None:
        g_prev_precedence.addcmul_(torch.rsub(write.sum(-1), 1), grad_precedence)
        g_w.add_(grad_precedence).sub_(torch.bmm(p_row, grad_precedence.unsqueeze(-1))[:, 0])

    # (B7) Erase and add: M_t = M_{t-1} + w o Y, Y = 1 v^T - M_{t-1} o (1 e^T).
    g_mem_erased = g_mem * saved.erase  # dL/dM_t o (1 e^T)
    g_prev_memory = torch.addcmul(g_mem, saved.write_column, g_mem_erased, value=-1)
    g_erase = torch.bmm(write, g_mem * saved.memory).squeeze(1)  # -g_e
    g_values = torch.bmm(write, g_mem).squeeze(1)
    g_w += (g_mem * saved.update).sum(-1)
    if grad_write is not None:
        g_w += grad_write[:, 0]

    # (B6) Write weighting.
    _, _, free, allocation_gate, write_gate = saved.gates.split([width, width, r, 1, 1], dim=1)
    write_content = saved.write_content.weights[:, 0]
    g_write_gate = (g_w * saved.mixed).sum(-1, keepdim=True)
    g_mixed = g_w.mul_(write_gate)
    g_allocation_gate = (g_mixed * (saved.allocation - write_content)).sum(-1, keepdim=True)
    g_allocation = g_mixed * allocation_gate
    g_write_content = g_mixed * torch.rsub(allocation_gate, 1)

    # (B5) Write content on M_{t-1}.
    g_write_key, g_write_strength, g_mem_content = content_backward(
        g_write_content.unsqueeze(1), saved.write_content
    )
    g_prev_memory += g_mem_content

    # (B4) Allocation. The sums over k > j run from the back: no cancellation.
    g_sorted = torch.gather(g_allocation, -1, saved.free_list)
    later = (g_sorted * saved.sorted_allocation)[:, 1:].flip(-1).cumsum(-1).flip(-1)
    later.div_(saved.clamped).mul_(saved.sorted_usage[:, :-1] >= usage_eps)
    g_sorted = torch.addcmul(F.pad(later, (0, 1)), g_sorted, saved.exclusive, value=-1)
    g_usage = torch.empty_like(g_sorted).scatter_(-1, saved.free_list, g_sorted)
    if grad_usage is not None:
        g_usage += grad_usage

    # (B3) Usage.
    g_usage_hat = g_usage * saved.psi
    g_psi = g_usage.mul_(saved.usage_hat)
    g_prev_usage = g_usage_hat * torch.rsub(saved.prev_write, 1)
    g_prev_write = g_usage_hat.mul_(torch.rsub(saved.usage, 1)).unsqueeze(1)

    # (B2) Retention.
    g_kept = exclusive_head_products(saved.kept).mul_(g_psi.unsqueeze(1))  # (B, R, N)
    g_free = (g_kept * prev_read).sum(-1)  # -g_f
    g_prev_read.addcmul_(free.unsqueeze(-1), g_kept, value=-1)

    # (B1) Constraints, back to the raw interface.
    g_strengths = torch.ops.aten.softplus_backward(
        torch.cat([g_read_strengths, g_write_strength], dim=1),
        saved.raw_strengths,
        1.0,
        SOFTPLUS_THRESHOLD,
    )
    g_heads = torch.cat(
        [torch.cat([g_read_keys, g_write_key], dim=1), g_strengths], dim=-1
    )  # (B, R + 1, W + 1)
    gates = saved.gates
    slope = torch.addcmul(gates, gates, gates, value=-1)  # sigmoid' = s - s^2
    slope[:, width : 2 * width] = 1  # v is not constrained
    g_gates = torch.cat(
        [g_erase.neg_(), g_values, g_free.neg_(), g_allocation_gate, g_write_gate], dim=1
    ).mul_(slope)
    g_modes = softmax_backward(saved.modes, g_modes).view(b, 3 * r)
    g_interface = torch.cat([g_heads.view(b, -1), g_gates, g_modes], dim=1)
    return (
        g_interface,
        g_prev_memory,
        g_prev_usage,
        g_link,
        g_prev_precedence,
        g_prev_read,
        g_prev_write,
    )


class DNCStep(torch.autograd.Function):
    """The fused DNC step; see the module docstring. Use :func:`dnc_step`."""

    @staticmethod
    def forward(
        ctx: Any,
        interface: Tensor,
        memory: Tensor,
        usage: Tensor,
        link: Tensor,
        precedence: Tensor,
        read_weights: Tensor,
        write_weights: Tensor,
        read_eps: float,
        write_eps: float,
        usage_eps: float,
    ) -> tuple[Tensor, ...]:
        ctx.set_materialize_grads(False)
        dtype = memory.dtype
        with _no_autocast(interface.device.type):
            outputs, saved = _forward(
                _as(interface, dtype),
                memory,
                _as(usage, dtype),
                _as(link, dtype),
                _as(precedence, dtype),
                _as(read_weights, dtype),
                _as(write_weights, dtype),
                read_eps,
                write_eps,
                usage_eps,
            )
        ctx.save_for_backward(*_flatten(saved))
        ctx.usage_eps = usage_eps
        return outputs

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, *grads: Tensor | None) -> tuple[Tensor | None, ...]:
        saved = _unflatten(ctx.saved_tensors)
        dtype = saved.memory.dtype
        grads = tuple(None if g is None else _as(g, dtype) for g in grads)
        with _no_autocast(saved.memory.device.type):
            result = _backward(saved, *grads, ctx.usage_eps, ctx.needs_input_grad[3])
        return (*result, None, None, None)


def _as(value: Tensor, dtype: torch.dtype) -> Tensor:
    """``value`` in ``dtype`` (under autocast the interface may be bfloat16)."""
    return value if value.dtype == dtype else value.to(dtype)


def _no_autocast(device_type: str) -> AbstractContextManager[Any]:
    """Autocast off for the step's own arithmetic, which runs in the state's dtype."""
    if torch.is_autocast_enabled(device_type):
        return torch.autocast(device_type, enabled=False)
    return nullcontext()


def dnc_step(
    interface: Tensor,
    memory: Tensor,
    usage: Tensor,
    link: Tensor,
    precedence: Tensor,
    read_weights: Tensor,
    write_weights: Tensor,
    read_eps: float,
    write_eps: float,
    usage_eps: float,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """One DNC memory step with ``content`` addressing, as one autograd node: the
    native kernels' (:mod:`.dnc_step_native`) on the CPU where they are available, else
    :class:`DNCStep`.

    Computes in ``memory``'s dtype (under autocast a bfloat16 interface is cast to it).

    Args:
        interface: ``(B, R W + 3 W + 5 R + 3)`` raw controller outputs, laid out as in
            :class:`nma_plugins.memories.dnc.DNCMemory`.
        memory: ``(B, N, W)`` ``M_{t-1}``.
        usage: ``(B, N)`` ``u_{t-1}``.
        link: ``(B, N, N)`` ``L_{t-1}``, zero diagonal.
        precedence: ``(B, 1, N)`` ``p_{t-1}``.
        read_weights: ``(B, R, N)`` ``w^r_{t-1}``.
        write_weights: ``(B, 1, N)`` ``w^w_{t-1}``.
        read_eps: the read heads' cosine similarity ``eps``.
        write_eps: the write head's cosine similarity ``eps``.
        usage_eps: the allocation's floor inside the logarithm.

    Returns:
        ``(reads (B, R W), memory (B, N, W), usage (B, N), link (B, N, N),
        precedence (B, N), read_weights (B, R, N), write_weights (B, 1, N))``.
    """
    step = NativeDNCStep if use_native(memory, interface, link) else DNCStep
    return step.apply(
        interface,
        memory,
        usage,
        link,
        precedence,
        read_weights,
        write_weights,
        read_eps,
        write_eps,
        usage_eps,
    )
