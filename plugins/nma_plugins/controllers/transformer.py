"""Transformer controller: causal attention over a sliding window of past steps.

A pre-layer-norm transformer (Vaswani et al. 2017, "Attention Is All You Need", §3.2,
eq. (1); layer norm before each sub-layer as in Xiong et al. 2020) run one step at a
time. Its recurrent state is the window of the last ``window`` inputs of every layer,
so a step costs ``O(window)`` and the state has a fixed size: it can be detached,
checkpointed and traced by ``torch.compile`` like any other.

At step ``t``, with ``e_t = W_e x_t + b_e`` and ``h^0_t = e_t``, each layer ``l``
appends its input ``h^{l-1}_t`` to its window ``S^l`` (``(window, D)``, oldest first,
the newest at index ``window − 1``) and computes::

    U      = S^l + P^l                         P^l: learned embedding of each window place
    q_j    = LN_1(U[-1]) W^Q_j,   K_j = LN_1(U) W^K_j,   V_j = LN_1(U) W^V_j     head j
    a_j    = softmax(q_j K_jᵀ / sqrt(D / heads) + mask) V_j                       eq. (1)
    g      = h^{l-1}_t + [a_1 | ... | a_heads] W^O
    h^l_t  = g + W_2 relu(W_1 LN_2(g) + b_1) + b_2

``mask`` is ``−inf`` on window places not yet filled (the first ``window − 1`` steps of a
sequence), so a step attends to itself and to at most ``window − 1`` earlier steps,
never to later ones: the attention is causal. The output is ``LN_f(h^L_t)``,
``(B, hidden_size)``. The window embedding ``P^l`` is indexed by how many steps ago a
place was written, so positions are relative to the current step.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from pydantic import Field
from torch import Tensor, nn

from nma import Controller, Options


class TransformerState(NamedTuple):
    """The window of past layer inputs.

    Attributes:
        window: ``(layers, B, window, hidden_size)``: layer ``l``'s inputs at the last
            ``window`` steps, oldest first.
        filled: ``(B, window)``: 1.0 where a place holds a step of this sequence.
    """

    window: Tensor
    filled: Tensor


class WindowBlock(nn.Module):
    """One pre-layer-norm block attending from the newest window place to all of them.

    Args:
        size: ``D``, the model width.
        heads: attention heads; ``D`` must be a multiple of it.
        window: places in the window.
        feedforward_size: units of the feed-forward sub-layer.
    """

    def __init__(self, size: int, heads: int, window: int, feedforward_size: int) -> None:
        super().__init__()
        self.heads = heads
        self.place = nn.Parameter(torch.randn(window, size) * 0.02)  # P^l
        self.norm_attention = nn.LayerNorm(size)
        self.query = nn.Linear(size, size)
        self.key = nn.Linear(size, size)
        self.value = nn.Linear(size, size)
        self.out = nn.Linear(size, size)
        self.norm_feedforward = nn.LayerNorm(size)
        self.feedforward = nn.Sequential(
            nn.Linear(size, feedforward_size), nn.ReLU(), nn.Linear(feedforward_size, size)
        )

    def forward(self, h: Tensor, window: Tensor, filled: Tensor) -> Tensor:
        """``h`` ``(B, D)`` the newest input (already the last place of ``window``
        ``(B, S, D)``), ``filled`` ``(B, S)`` → ``(B, D)``."""
        batch, places, size = window.shape
        head = size // self.heads
        u = self.norm_attention(window + self.place)  # (B, S, D)
        q = self.query(u[:, -1]).view(batch, self.heads, 1, head)
        k = self.key(u).view(batch, places, self.heads, head).transpose(1, 2)  # (B, H, S, d)
        v = self.value(u).view(batch, places, self.heads, head).transpose(1, 2)
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(head)  # (B, H, 1, S)
        mask = filled.view(batch, 1, 1, places) > 0
        scores = scores.masked_fill(~mask, -math.inf)
        attended = torch.matmul(scores.softmax(dim=-1), v).reshape(batch, size)
        g = h + self.out(attended)
        return g + self.feedforward(self.norm_feedforward(g))


class TransformerController(Controller):
    """A causal transformer over a window of the last ``window`` steps (see module doc).

    The output is ``(B, hidden_size)``; the state is a :class:`TransformerState` whose
    window starts empty (all zeros, nothing filled).
    """

    class Config(Options):
        hidden_size: int = Field(64, ge=1, description="D: the model width and output size.")
        heads: int = Field(4, ge=1, description="Attention heads; must divide hidden_size.")
        layers: int = Field(1, ge=1, description="Stacked transformer blocks.")
        window: int = Field(16, ge=1, description="Steps attended to, the current one included.")
        feedforward_size: int = Field(
            128, ge=1, description="Units of each block's feed-forward sub-layer."
        )

    config: Config

    def __init__(self, config: Config, input_size: int) -> None:
        super().__init__(config, input_size)
        if config.hidden_size % config.heads:
            raise ValueError(
                f"hidden_size ({config.hidden_size}) must be a multiple of heads ({config.heads})"
            )
        self.output_size = config.hidden_size
        self.embed = nn.Linear(input_size, config.hidden_size)
        self.blocks = nn.ModuleList(
            WindowBlock(config.hidden_size, config.heads, config.window, config.feedforward_size)
            for _ in range(config.layers)
        )
        self.norm = nn.LayerNorm(config.hidden_size)

    def initial_state(
        self, batch_size: int, device: torch.device, dtype: torch.dtype
    ) -> TransformerState:
        """An empty window: zeros ``(layers, B, window, hidden_size)``, ``filled`` zeros."""
        c = self.config
        window = torch.zeros(
            c.layers, batch_size, c.window, c.hidden_size, device=device, dtype=dtype
        )
        return TransformerState(
            window, torch.zeros(batch_size, c.window, device=device, dtype=dtype)
        )

    def forward(self, x: Tensor, state: TransformerState) -> tuple[Tensor, TransformerState]:
        """One step: ``x`` ``(B, input_size)`` → ``(B, hidden_size)``."""
        h = self.embed(x)
        ones = torch.ones_like(state.filled[:, :1])
        filled = torch.cat([state.filled[:, 1:], ones], dim=1)
        windows = []
        for layer, block in enumerate(self.blocks):
            window = torch.cat([state.window[layer, :, 1:], h.unsqueeze(1)], dim=1)
            windows.append(window)
            h = block(h, window, filled)
        return self.norm(h), TransformerState(torch.stack(windows), filled)
