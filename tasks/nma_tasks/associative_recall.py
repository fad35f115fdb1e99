"""The associative-recall task of the Neural Turing Machine paper (Graves et al. 2014, §4.3)."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from pydantic import Field, model_validator
from torch import Tensor

from nma import Batch, Options, Split, Task
from nma_tasks.sequences import (
    bit_errors,
    check_range,
    masked_bce,
    random_bits,
    ranged_batches,
    uniform_ints,
)


class AssociativeRecallTask(Task):
    """Read a list of items, then a query item from the list; write the item that
    followed the query.

    An item is ``item_length`` random binary vectors of ``width`` bits; the items of
    one sequence are all different (so the answer is unique). With ``n`` items,
    ``k = item_length`` and ``Q = n·(k+1)``, in a batch of ``T = max(Q) + 2k + 2``
    steps:

    * inputs ``(T, B, width + 2)``: item ``i`` (``i = 0..n-1``) takes steps
      ``i(k+1) .. i(k+1)+k``: its first step sets channel ``width`` (item delimiter)
      to 1, the next ``k`` carry its vectors on channels ``0..width-1``; step ``Q``
      sets channel ``width + 1`` (query delimiter) to 1; steps ``Q+1..Q+k`` carry the
      query item, a copy of item ``q`` with ``q`` uniform in ``0..n-2`` (never the
      last item); step ``Q+k+1`` sets the query delimiter again; every other entry is 0;
    * targets ``(T, B, width)``: steps ``Q+k+2..Q+2k+1`` carry item ``q+1``;
    * mask ``(T, B)``: 1 on those ``k`` steps.

    The number of items is drawn uniformly from ``[min_items, max_items]`` in
    training and from ``[eval_min_items, eval_max_items]`` (by default the training
    range; it may exceed it) for the ``eval_size`` held-out sequences.

    Curriculum: with ``curriculum_steps = N > 0``, training batch ``i`` (from 0)
    draws up to ``min_items + ⌊(max_items - min_items)·i/N⌋`` items; from batch
    ``N`` on, the full range.

    Loss: binary cross-entropy of the output logits, averaged over scored bits.
    Metrics: ``bit_errors`` (main), the mean number of wrong bits in the answer item
    per sequence (each output thresholded at 0.5, the NTM paper's measure);
    ``item_accuracy``, the share of sequences whose answer item is exactly right.
    """

    main_metric = "bit_errors"
    main_metric_mode = "min"

    class Config(Options):
        width: int = Field(6, ge=1, description="Bits per vector.")
        item_length: int = Field(3, ge=1, description="Vectors per item.")
        min_items: int = Field(2, ge=2, description="Fewest items in a training sequence.")
        max_items: int = Field(6, ge=2, description="Most items in a training sequence.")
        eval_min_items: int | None = Field(
            None, ge=2, description="Fewest items in a held-out sequence (default: min_items)."
        )
        eval_max_items: int | None = Field(
            None,
            ge=2,
            description="Most items in a held-out sequence (default: max_items); may exceed it.",
        )
        eval_size: int = Field(256, ge=1, description="Number of held-out sequences.")
        curriculum_steps: int = Field(
            0,
            ge=0,
            description="Training batches over which the largest number of items grows "
            "linearly from min_items to max_items (0: no curriculum).",
        )

        @model_validator(mode="after")
        def _check_ranges(self) -> AssociativeRecallTask.Config:
            check_range("min_items", self.min_items, "max_items", self.max_items)
            eval_max = self.eval_max_items or self.max_items
            check_range(
                "eval_min_items", self.eval_min_items or self.min_items, "eval_max_items", eval_max
            )
            most = max(self.max_items, eval_max)
            bits = self.width * self.item_length
            if bits < 63 and 2**bits < most:  # 63 bits give more items than a sequence holds
                raise ValueError(
                    f"width·item_length = {bits} bits allow only {2**bits} different items, "
                    f"fewer than the {most} a sequence may hold; raise width or item_length"
                )
            return self

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.input_size = config.width + 2
        self.output_size = config.width

    def batches(self, split: Split, batch_size: int, generator: torch.Generator) -> Iterator[Batch]:
        """Endless training batches, or ``eval_size`` held-out sequences in batches."""
        c = self.config
        held_out = (c.eval_min_items or c.min_items, c.eval_max_items or c.max_items)
        return ranged_batches(
            split,
            batch_size,
            generator,
            lambda size, ranges, gen: self.sample(size, *ranges[0], gen),
            [(c.min_items, c.max_items)],
            [held_out],
            c.eval_size,
            c.curriculum_steps,
        )

    def distinct_items(self, batch_size: int, count: int, generator: torch.Generator) -> Tensor:
        """``(B, count, item_length, width)`` random items, all different within a sequence.

        An item equal to an earlier one of its sequence is drawn again until none is.
        """
        k, w = self.config.item_length, self.config.width
        items = random_bits((batch_size, count, k * w), generator)
        earlier = torch.ones(count, count, dtype=torch.bool).tril(-1)  # [j, i]: i < j
        while True:
            same = (items.unsqueeze(2) == items.unsqueeze(1)).all(-1)  # (B, j, i)
            repeated = (same & earlier).any(-1)  # (B, count)
            if not repeated.any():
                return items.view(batch_size, count, k, w)
            fresh = random_bits(items.shape, generator)
            items = torch.where(repeated.unsqueeze(-1), fresh, items)

    def sample(
        self, batch_size: int, min_items: int, max_items: int, generator: torch.Generator
    ) -> Batch:
        """One batch with the number of items uniform in ``[min_items, max_items]``."""
        k, w = self.config.item_length, self.config.width
        n = uniform_ints(min_items, max_items, batch_size, generator)  # (B,)
        most = int(n.max())
        items = self.distinct_items(batch_size, most, generator)  # (B, most, k, w)
        # the query: uniform in 0..n-2 (never the last item)
        q = (torch.rand(batch_size, generator=generator) * (n - 1)).long().clamp(max=n - 2)
        rows = torch.arange(batch_size)
        query, answer = items[rows, q], items[rows, q + 1]  # (B, k, w)

        start = n * (k + 1)  # (B,): the first query delimiter
        steps = int(start.max()) + 2 * k + 2
        t = torch.arange(steps).unsqueeze(1)  # (T, 1)
        inputs = torch.zeros(steps, batch_size, w + 2)
        # the item list: a delimiter step, then k vector steps, for each item
        block = torch.zeros(most, k + 1, batch_size, w + 1)
        block[:, 0, :, w] = 1
        block[:, 1:, :, :w] = items.permute(1, 2, 0, 3)
        listing = most * (k + 1)
        inputs[:listing, :, : w + 1] = block.reshape(listing, batch_size, w + 1)
        inputs[:listing] *= (t[:listing] < start).unsqueeze(-1)
        # the query, between two query delimiters
        rel = t - start  # (T, B)
        inputs[..., w + 1] = ((rel == 0) | (rel == k + 1)).float()
        in_query = (rel >= 1) & (rel <= k)
        inputs[..., :w] += self._place(query, rel - 1, in_query)
        # the answer
        mask = (rel >= k + 2) & (rel <= 2 * k + 1)
        targets = self._place(answer, rel - k - 2, mask)
        return Batch(inputs, targets, mask.float())

    @staticmethod
    def _place(item: Tensor, position: Tensor, where: Tensor) -> Tensor:
        """``(T, B, w)``: vector ``position[t, b]`` of ``item[b]`` where ``where`` is
        true, 0 elsewhere; ``item`` is ``(B, k, w)``, ``position`` ``(T, B)``."""
        k = item.shape[1]
        source = torch.where(where, position, 0).clamp(0, k - 1)  # (T, B)
        by_step = item.permute(1, 0, 2)  # (k, B, w)
        index = source.unsqueeze(-1).expand(*source.shape, item.shape[2])
        return by_step.gather(0, index) * where.unsqueeze(-1)

    def loss(self, outputs: Tensor, batch: Batch) -> Tensor:
        """Binary cross-entropy over scored bits; ``outputs`` are logits ``(T, B, width)``."""
        return masked_bce(outputs, batch.targets, batch.mask)

    def metrics(self, outputs: Tensor, batch: Batch) -> dict[str, float]:
        """``bit_errors`` in the answer item per sequence and ``item_accuracy``."""
        per_sequence = bit_errors(outputs, batch.targets, batch.mask)
        return {
            "bit_errors": per_sequence.mean().item(),
            "item_accuracy": (per_sequence == 0).float().mean().item(),
        }
