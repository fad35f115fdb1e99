"""Experience replay from a bounded buffer filled by reservoir sampling."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor

from nma import Batch, Options, Regularizer, concat_batches, pad_steps, select
from nma_plugins.regularizers.reservoir import reservoir_slots
from nma_plugins.regularizers.samples import batch_from_state, batch_state


class ReplayRegularizer(Regularizer):
    """Rehearsal: every training sequence seen is offered to a buffer of
    ``capacity`` sequences by reservoir sampling (Vitter 1985; Chaudhry et al. 2019,
    "On Tiny Episodic Memories in Continual Learning", and Rolnick et al. 2019 for
    its use in continual learning), so the buffer is a uniform sample of the whole
    stream so far; each training batch is extended with ``replay_size`` sequences
    drawn uniformly from the buffer (before the batch itself is offered), and the
    task loss is taken over both. Sequences of different lengths are padded at the
    end with unscored steps. State: the buffer, the count of sequences seen and
    the generator, in checkpoints.
    """

    class Config(Options):
        capacity: int = Field(200, ge=1, description="Sequences the buffer holds.")
        replay_size: int = Field(
            0, ge=0, description="Buffer sequences added to each batch (0: the batch's size)."
        )
        seed: int = Field(0, ge=0, description="Seed of the reservoir and of the draws.")

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.buffer: Batch | None = None
        self.size = 0
        self.seen = 0
        self.generator = torch.Generator().manual_seed(config.seed)

    def augment(self, batch: Batch) -> Batch:
        """``batch`` plus sequences drawn from the buffer; ``batch`` is then offered
        to the buffer."""
        replayed = None
        if self.size:
            count = self.config.replay_size or batch.inputs.shape[1]
            index = torch.randint(self.size, (count,), generator=self.generator)
            replayed = select(self.buffer, index).to(batch.inputs.device)  # type: ignore[arg-type]
        self.offer(batch)
        return batch if replayed is None else concat_batches([batch, replayed])

    def offer(self, batch: Batch) -> None:
        """Offer each sequence of ``batch`` to the reservoir."""
        batch = batch.to("cpu")
        count = batch.inputs.shape[1]
        slots = reservoir_slots(self.seen, count, self.config.capacity, self.generator)
        self.seen += count
        for j, slot in enumerate(slots):
            if slot is not None:
                self._store(slot, select(batch, slice(j, j + 1)))

    def _store(self, slot: int, sequence: Batch) -> None:
        if self.buffer is None:
            shape = [(t.shape[0], self.config.capacity, *t.shape[2:]) for t in sequence]
            self.buffer = Batch(*(t.new_zeros(s) for t, s in zip(sequence, shape, strict=True)))
        steps = max(self.buffer.inputs.shape[0], sequence.inputs.shape[0])
        self.buffer = pad_steps(self.buffer, steps)
        sequence = pad_steps(sequence, steps)
        for held, new in zip(self.buffer, sequence, strict=True):
            held[:, slot] = new[:, 0]
        self.size = min(self.size + 1, self.config.capacity) if slot >= self.size else self.size

    def state_dict(self) -> dict[str, Tensor]:
        """``buffer/...`` (the first ``size`` slots), ``seen``, ``generator``."""
        out = {
            "seen": torch.tensor(self.seen, dtype=torch.int64),
            "generator": self.generator.get_state(),
        }
        if self.buffer is not None:
            out.update(batch_state("buffer", self.buffer))
        return out

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """Restore the buffer, the count and the generator."""
        self.buffer = batch_from_state("buffer", state)
        self.seen = int(state["seen"]) if "seen" in state else 0
        self.size = min(self.seen, self.config.capacity)
        if "generator" in state:
            self.generator.set_state(state["generator"])
