"""An output head tied to an input embedding: End-To-End Memory Networks' ``W^T = C^K``.

MemN2N with adjacent weight tying (Sukhbaatar et al. 2015, section 2.2) answers with
``a = softmax(W u^{K+1})`` where the answer matrix is the last hop's output embedding,
``W^T = C^K``: the logit of answer word ``w`` is ``u^{K+1} . C^K[w]``, the same vector
that embeds ``w`` when it is read from memory. In nma the embeddings are rows of the
model's interface layer, a linear function of the controller output; with a controller
that passes its input through, column ``c`` of those rows is the embedding of input
channel ``c``. A task names the channels that spell each of its output classes
(:attr:`nma.Task.output_channels`), the memory names the rows
(:attr:`nma.Memory.output_embedding`), and the head's row for class ``a`` is

    W[a] = sum_{c in channels(a)} E[:, c]       (E: the interface rows, (D, input))

A class with no channels (an answer that is not an input word, e.g. bAbI's
``"n,w"``) gets a free row of its own, as a word of the answer vocabulary alone has its
own column of ``C^K`` in the paper. Every class keeps a bias, as the untied head has.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from nma.errors import UsageError


class TiedHead(nn.Module):
    """The output layer ``y = W r (+ V h) + b`` with ``W`` built from embedding columns.

    Args:
        channels: per output class, the input channels whose embeddings sum to its
            row of ``W`` (empty: a free row).
        input_size: the width of the embedding's input (the interface layer's input).
        rows: the interface rows that hold the tied embedding (``D`` of them).
        controller_size: the width of the controller output the head also reads
            (``V h``, untied), or 0 when it reads the memory's reads alone.

    Raises:
        UsageError: for a channel outside ``0 .. input_size - 1``.

    Shapes: ``reads`` ``(..., D)``, ``hidden`` ``(..., controller_size)``, output
    ``(..., len(channels))``.
    """

    def __init__(
        self, channels: list[list[int]], input_size: int, rows: slice, controller_size: int
    ) -> None:
        super().__init__()
        outputs = len(channels)
        width = rows.stop - rows.start
        spelling = torch.zeros(outputs, input_size)
        for a, chans in enumerate(channels):
            for c in chans:
                if not 0 <= c < input_size:
                    raise UsageError(
                        f"The task spells output class {a} with input channel {c}, "
                        f"outside the {input_size} channels the tied embedding reads: its "
                        "output_channels do not match its input_size (a bug in the task)."
                    )
                spelling[a, c] += 1.0
        free = torch.tensor([not chans for chans in channels], dtype=torch.float32)
        self.rows = rows
        self.register_buffer("spelling", spelling, persistent=False)
        """``(outputs, input_size)``: how many times each channel spells each class."""
        self.register_buffer("free_rows", free.unsqueeze(-1), persistent=False)
        """``(outputs, 1)``: 1 for the classes with a free row."""
        bound = 1.0 / math.sqrt(width)  # nn.Linear's initialisation for D inputs
        self.free = nn.Parameter(torch.empty(outputs, width).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(outputs).uniform_(-bound, bound))
        self.hidden = nn.Linear(controller_size, outputs, bias=False) if controller_size else None

    def weight(self, embedding: Tensor) -> Tensor:
        """``W`` ``(outputs, D)`` from the interface layer's weight ``(interface, input)``."""
        tied = self.spelling.to(embedding.dtype) @ embedding[self.rows].T
        return tied + self.free_rows.to(embedding.dtype) * self.free

    def forward(self, reads: Tensor, hidden: Tensor | None, embedding: Tensor) -> Tensor:
        """The logits ``W r + b`` (``+ V h`` where the head reads the controller too)."""
        out = nn.functional.linear(reads, self.weight(embedding), self.bias)
        if self.hidden is not None and hidden is not None:
            out = out + self.hidden(hidden)
        return out
