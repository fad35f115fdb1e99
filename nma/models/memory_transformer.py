"""``MemoryTransformer``: a transformer over segments with a kNN memory per block."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nma.layers.components import to_time_major
from nma.layers.transformer import TransformerMemoryLayer
from nma.state import State


class MemoryTransformer(nn.Module):
    """A Memorizing-Transformer-style model (Wu et al. 2022) for long sequences.

    The sequence is cut into segments of ``segment_length`` steps. Each segment is
    embedded (``W_e x + b_e`` plus a learned embedding of the place in the segment),
    passes ``num_layers`` :class:`~nma.layers.TransformerMemoryLayer` blocks (causal
    attention within the segment, top-k retrieval from the keys and values of every
    earlier segment), a final layer norm and a linear head. Each block's memory is
    carried from segment to segment and, through the returned state, from call to call.

    Args:
        input_size: width of one step's input.
        hidden_size: ``D``, the model width.
        memory_size: key-value pairs each block's memory keeps.
        memory_dim: ``d``, the width of a head's queries, keys and values.
        output_size: width of one step's output; ``input_size`` if ``None``.
        num_heads: attention heads per block.
        num_layers: blocks.
        top_k: pairs retrieved per query and head.
        segment_length: steps per segment.
        batch_first: inputs and outputs are ``(B, T, ...)``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        memory_size: int = 128,
        memory_dim: int = 20,
        output_size: int | None = None,
        *,
        num_heads: int = 4,
        num_layers: int = 2,
        top_k: int = 8,
        segment_length: int = 16,
        batch_first: bool = False,
    ) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.output_size = output_size if output_size is not None else input_size
        self.segment_length = segment_length
        self.batch_first = batch_first
        self.embed = nn.Linear(input_size, hidden_size)
        self.place = nn.Parameter(torch.randn(segment_length, 1, hidden_size) * 0.02)
        self.blocks = nn.ModuleList(
            TransformerMemoryLayer(hidden_size, num_heads, memory_size, top_k, head_dim=memory_dim)
            for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(hidden_size)
        self.head = nn.Linear(hidden_size, self.output_size)

    def forward(
        self, inputs: Tensor, state: tuple[State, ...] | None = None
    ) -> tuple[Tensor, tuple[State, ...]]:
        """Run a sequence, segment by segment.

        Args:
            inputs: ``(T, B, input_size)``, or ``(B, T, input_size)`` when ``batch_first``.
            state: the blocks' memories from an earlier call; empty if ``None``.

        Returns:
            ``(outputs, state)``: ``(T, B, output_size)`` logits (batch-first if so
            built), and the blocks' memories.
        """
        x = self.embed(to_time_major(inputs, self.batch_first))  # (T, B, D)
        memories = list(state) if state is not None else [None] * len(self.blocks)
        outputs = []
        for segment in x.split(self.segment_length, dim=0):
            h = segment + self.place[: segment.shape[0]]
            for index, block in enumerate(self.blocks):
                h, memories[index] = block(h, memories[index])
            outputs.append(h)
        y = self.head(self.norm(torch.cat(outputs)))
        return to_time_major(y, self.batch_first), tuple(memories)
