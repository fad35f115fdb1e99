"""``TransformerMemoryLayer``: a transformer block that also reads an external memory.

A pre-layer-norm block (Vaswani et al. 2017; layer norm first as in Xiong et al. 2020)
in the style of Memorizing Transformers (Wu et al. 2022, §3): every head attends
causally over the current segment *and*, separately, over the top-k (key, value)
pairs retrieved from an external memory of earlier segments' keys and values; a
learned gate per head mixes the two (their eq. for ``V_a``)::

    U        = LN_1(X)                                            X: (T, B, D) one segment
    Q, K, V  = U W^Q, U W^K, U W^V                                heads of width d
    A_loc    = softmax(Q Kᵀ / sqrt(d) + causal mask) V            within the segment
    A_mem    = knn_attention(Q, memory)                           top-k of earlier segments
    A        = g_h ∘ A_mem + (1 − g_h) ∘ A_loc,    g_h = sigmoid(b_h)   (g_h = 0 where
                                                                  the memory is empty)
    G        = X + A W^O
    Y        = G + W_2 relu(W_1 LN_2(G) + b_1) + b_2

After the segment, its keys and values (detached: as in the paper, no gradient flows
into the memory) are written, one per position, into the external memory, which is
the registered ``kv`` memory (a first-in-first-out ring buffer of ``memory_size``
key-value pairs) written through its own step; retrieval reads its state through
``inspect`` (``keys``, ``memory``, ``usage``). So the memory is carried across
segments in the layer's state, and a segment retrieves what earlier ones stored.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from nma.build import build_memory
from nma.layers.components import to_time_major
from nma.layers.knn import knn_attention
from nma.state import State

WRITE_GATE = 30.0
"""The kv memory's gate logit for a write: sigmoid(30) is 1 in float32."""


class TransformerMemoryLayer(nn.Module):
    """A transformer block with a kNN key-value memory carried across segments.

    Args:
        d_model: ``D``, the width of the input and output.
        num_heads: attention heads ``H``.
        memory_size: key-value pairs the memory keeps (the oldest are overwritten).
        top_k: pairs retrieved per query and head.
        head_dim: ``d``, the width of a head's queries, keys and values;
            ``d_model // num_heads`` if ``None``.
        feedforward_size: units of the feed-forward sub-layer; ``4 d_model`` if ``None``.
        batch_first: input and output are ``(B, T, D)``.

    Attributes:
        memory: the ``kv`` memory (``nma.Memory``) holding ``H d``-wide keys and values.
        gate: ``(H,)`` the gate logits ``b_h`` (0 at first: an even mix).
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int = 4,
        memory_size: int = 1024,
        top_k: int = 32,
        head_dim: int | None = None,
        feedforward_size: int | None = None,
        batch_first: bool = False,
    ) -> None:
        super().__init__()
        head_dim = head_dim if head_dim is not None else d_model // num_heads
        if head_dim < 1 or top_k < 1:
            raise ValueError("need head_dim >= 1 (num_heads <= d_model) and top_k >= 1")
        inner = num_heads * head_dim
        self.num_heads, self.head_dim, self.top_k = num_heads, head_dim, top_k
        self.batch_first = batch_first
        self.norm_attention = nn.LayerNorm(d_model)
        self.query = nn.Linear(d_model, inner)
        self.key = nn.Linear(d_model, inner)
        self.value = nn.Linear(d_model, inner)
        self.out = nn.Linear(inner, d_model)
        self.gate = nn.Parameter(torch.zeros(num_heads))
        self.norm_feedforward = nn.LayerNorm(d_model)
        hidden = feedforward_size if feedforward_size is not None else 4 * d_model
        self.feedforward = nn.Sequential(
            nn.Linear(d_model, hidden), nn.ReLU(), nn.Linear(hidden, d_model)
        )
        self.memory = build_memory(
            "kv", {"slots": memory_size, "width": inner, "key_size": inner, "read_heads": 1}
        )

    def initial_state(
        self, batch_size: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> State:
        """An empty memory (the ``kv`` memory's initial state)."""
        device = device if device is not None else self.out.weight.device
        dtype = dtype if dtype is not None else self.out.weight.dtype
        return self.memory.initial_state(batch_size, device, dtype)

    def forward(self, inputs: Tensor, state: State = None) -> tuple[Tensor, State]:
        """Process one segment and store its keys and values.

        Args:
            inputs: ``(T, B, D)``, or ``(B, T, D)`` when ``batch_first``.
            state: the memory of the earlier segments; empty if ``None``.

        Returns:
            ``(outputs, state)``: the same shape as ``inputs``, and the memory with
            this segment's ``T`` key-value pairs added.
        """
        x = to_time_major(inputs, self.batch_first)
        if state is None:
            state = self.initial_state(x.shape[1], x.device, x.dtype)
        attended, keys, values = self.attend(self.norm_attention(x), state)
        g = x + self.out(attended)
        y = g + self.feedforward(self.norm_feedforward(g))
        return to_time_major(y, self.batch_first), self.store(keys, values, state)

    def attend(self, u: Tensor, state: State) -> tuple[Tensor, Tensor, Tensor]:
        """The mixed local and memory attention of normalised inputs ``u`` ``(T, B, D)``.

        Returns:
            ``(attended, keys, values)``: ``(T, B, H d)`` before ``W^O``, and this
            segment's keys and values ``(T, B, H d)``.
        """
        length, batch, _ = u.shape
        q, k, v = self.query(u), self.key(u), self.value(u)  # (T, B, H d)

        def heads(t: Tensor) -> Tensor:  # (T, B, H d) -> (B, H, T, d)
            return t.view(length, batch, self.num_heads, self.head_dim).permute(1, 2, 0, 3)

        qh, kh, vh = heads(q), heads(k), heads(v)
        scores = torch.matmul(qh, kh.transpose(-1, -2)) / math.sqrt(self.head_dim)
        future = torch.ones(length, length, dtype=torch.bool, device=u.device).triu(1)
        local = torch.matmul(scores.masked_fill(future, -math.inf).softmax(-1), vh)
        record = self.memory.inspect(state)
        n = record["keys"].shape[1]

        def stored(t: Tensor) -> Tensor:  # (B, N, H d) -> (B, H, N, d)
            return t.view(batch, n, self.num_heads, self.head_dim).transpose(1, 2)

        remote, found = knn_attention(
            qh,
            stored(record["keys"]),
            stored(record["memory"]),
            record["usage"],
            self.top_k,
            self.memory.config.eps,
        )
        g = torch.sigmoid(self.gate).view(1, -1, 1, 1) * found  # (B, H, T, 1)
        mixed = g * remote + (1 - g) * local  # (B, H, T, d)
        return mixed.permute(2, 0, 1, 3).reshape(length, batch, -1), k, v

    def store(self, keys: Tensor, values: Tensor, state: State) -> State:
        """Write ``(T, B, H d)`` keys and values, detached, into the memory in order."""
        batch = keys.shape[1]
        gate = torch.full((batch, 1), WRITE_GATE, dtype=keys.dtype, device=keys.device)
        query = torch.zeros_like(keys[0])
        for key, value in zip(keys.detach().unbind(0), values.detach().unbind(0), strict=True):
            _, state = self.memory(torch.cat([key, value, gate, query], dim=-1), state)
        return state
