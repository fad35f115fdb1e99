"""The ``Memory`` interface: an external memory stepped once per time step."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch
from torch import Tensor, nn

from nma.addressing import Addressing
from nma.controller import Controller
from nma.options import Options
from nma.state import State

AddressingFactory = Callable[[int, int], Addressing]
"""Builds the addressing scheme a user chose: ``factory(width, heads) -> Addressing``."""

INSPECTED_FIELDS: tuple[str, ...] = ("read_weights", "write_weights", "usage", "memory", "keys")
"""The state fields that :meth:`Memory.inspect` returns by default, when a memory's
state has them: ``read_weights`` ``(B, R, N)``, ``write_weights`` ``(B, Wh, N)``,
``usage`` ``(B, N)`` in ``[0, 1]``, ``memory`` ``(B, N, W)`` (the stored contents,
values for a key-value memory) and ``keys`` ``(B, N, D)``."""


class Memory(nn.Module):
    """An external memory that a controller reads and writes one step at a time.

    Subclasses set:

    * ``Config``: their options (an :class:`nma.Options` model). Memories with such
      quantities name them alike: ``slots``, ``width``, ``read_heads``, ``write_heads``.
    * ``default_addressing``: the name of the addressing scheme used when the user
      does not pick one with ``--addressing``, or ``None`` when the memory takes no
      addressing plugin.
    * in ``__init__``: ``interface_size`` (controller outputs consumed per step) and
      ``read_size`` (width of what a step returns).

    Args:
        config: an instance of ``Config``.
        addressing: a factory for the chosen addressing scheme, or ``None`` when
            ``default_addressing`` is ``None``.

    The memory is usable as a plain layer: build it, call :meth:`initial_state`,
    then call it once per step with an interface vector.
    """

    Config: ClassVar[type[Options]] = Options
    default_addressing: ClassVar[str | None] = None
    rerunnable: ClassVar[bool] = True
    """Whether a step may run again from an earlier state (activation checkpointing
    does so). Memories that update their state in place set it to ``False``."""
    interface_size: int
    read_size: int
    reads_to_controller: bool = True
    """Whether a step's reads join the controller's next input (``x_{t+1} ++ r_t``, the
    default) or go to the output head only. A memory sets it to ``False`` where its
    reads must not shape later writes, e.g. End-To-End Memory Networks, whose memories
    are embeddings of the input alone (Sukhbaatar et al. 2015, section 2.1)."""

    head_sees_controller: bool = True
    """Whether the model's output head reads the controller output and the reads
    (``y_t = W_o (h_t ++ r_t)``, the default) or the reads alone (``y_t = W_o r_t``),
    e.g. End-To-End Memory Networks, whose answer is ``W u^{K+1}`` (Sukhbaatar et al.
    2015, eq. 3 with section 2.2)."""

    output_embedding: slice | None = None
    """Interface rows whose weights are an embedding the output head is tied to
    (End-To-End Memory Networks' ``W^T = C^K``, Sukhbaatar et al. 2015, section 2.2):
    the head's row for an output class is the sum of these rows' columns at the input
    channels that spell the class (:attr:`nma.Task.output_channels`); ``None`` (the
    default): an untied linear head. See :class:`nma.tied_head.TiedHead`."""

    def fed_reads_size(self) -> int:
        """The width the controller's input gains from the reads: ``read_size``, or 0
        without :attr:`reads_to_controller`."""
        return self.read_size if self.reads_to_controller else 0

    def __init__(self, config: Options, addressing: AddressingFactory | None = None) -> None:
        super().__init__()
        self.config = config

    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> State:
        """The state before the first step, a NamedTuple of ``(batch_size, ...)`` tensors."""
        raise NotImplementedError

    def forward(self, interface: Tensor, state: State) -> tuple[Tensor, State]:
        """Write, then read, for one time step.

        Args:
            interface: ``(B, interface_size)`` unconstrained controller outputs.
            state: the previous state.

        Returns:
            ``(reads, state)``: ``(B, read_size)`` and the new state.
        """
        raise NotImplementedError

    def init_interface(self, layer: nn.Linear) -> None:
        """Initialise the model's interface layer (controller output -> this memory's
        interface), which the model builds; called once, after ``nn.Linear``'s own
        initialisation, which the default keeps. A memory whose interface values are
        embeddings with a published initialisation may set it here."""

    def run_sequence(self, interfaces: Tensor, state: State) -> tuple[Tensor, State]:
        """Run ``T`` steps whose interface vectors are all known in advance (a model
        whose reads do not feed the controller, :attr:`reads_to_controller`).

        The default calls :meth:`forward` once per step; a memory may override it
        with an equivalent computation over the whole sequence at once.

        Args:
            interfaces: ``(T, B, interface_size)``.
            state: the state before the first step.

        Returns:
            ``(reads, state)``: ``(T, B, read_size)`` and the state after the last step.
        """
        reads = []
        for interface in interfaces.unbind(0):
            read, state = self(interface, state)
            reads.append(read)
        return torch.stack(reads), state

    def run_with_controller(
        self,
        controller: Controller,
        interface: nn.Linear,
        inputs: Tensor,
        controller_state: State,
        state: State,
        reads: Tensor,
    ) -> tuple[Tensor, Tensor, State, State] | None:
        """Run ``T`` steps of ``controller``, ``interface`` and this memory together, as
        the model would step them (:meth:`nma.MemoryModel.cell`), or decline.

        A memory whose reads feed the controller (:attr:`reads_to_controller`) may
        override this with a faster equivalent for the controllers it knows, e.g. the
        whole sequence as one autograd node whose backward pass multiplies the weight
        gradients of all steps at once. The model calls it for every sequence while
        gradients are recorded, and steps as usual when it returns ``None``, which the
        default always does.

        Args:
            controller: the model's controller.
            interface: the linear map from the controller output to the interface.
            inputs: ``(T, B, input_size)``, without the reads.
            controller_state: the controller's state before the first step.
            state: this memory's state before the first step.
            reads: ``(B, read_size)`` the reads of the step before the first.

        Returns:
            ``None``, or ``(hiddens, reads, controller_state, state)``: the controller
            outputs ``(T, B, controller.output_size)``, the reads ``(T, B, read_size)``
            and both states after the last step.
        """
        return None

    def slot_usage(self, state: State) -> Tensor | None:
        """How much each slot is in use, ``(B, N)`` in ``[0, 1]``; ``None`` if the memory
        has no such notion. Garbage collection (:func:`nma.collect_garbage`) frees the
        slots whose usage falls below a threshold."""
        return None

    def reorder_slots(self, state: State, order: Tensor) -> State:
        """Move the slots into a new order: slot ``order[b, i]`` becomes slot ``i``.

        Every per-slot tensor of the state (contents, usage, weightings, both axes of
        a link matrix, ...) is permuted alike, so what the memory reads on the next
        step does not change. ``order`` is ``(B, N)``, a permutation per batch element.
        Memories that support compaction override this.
        """
        raise NotImplementedError(f"{type(self).__name__} does not support reordering slots")

    def clear_slots(self, state: State, mask: Tensor) -> State:
        """Free the slots where ``mask`` ``(B, N)`` is true: their contents, usage and
        links set to zero, so they are first in line for allocation. The heads'
        weightings are kept (they are where the heads looked, not stored data), so a
        slot that held nothing can be freed without changing the next reads.
        Memories that support garbage collection override this."""
        raise NotImplementedError(f"{type(self).__name__} does not support freeing slots")

    def inspect(self, state: State) -> dict[str, Tensor]:
        """What the memory did on the step that produced ``state``, for plots and analysis.

        Returns named tensors with the batch first, e.g. ``read_weights``
        ``(B, read_heads, slots)``, ``write_weights`` ``(B, write_heads, slots)``,
        ``usage`` ``(B, slots)``, ``memory`` ``(B, slots, width)``. It has no side
        effects and costs nothing unless called (:class:`nma.recording.Recorder` calls
        it once per step while recording an evaluation).

        The default returns the fields of a NamedTuple state that carry one of the
        names of :data:`INSPECTED_FIELDS`, so a memory whose state uses these names
        is recorded and plotted without overriding this. Override it to return dense
        weightings from a sparse state, to rename fields, or to add quantities of
        your own (every name becomes a recorded series).
        """
        fields = getattr(state, "_fields", ())
        return {
            name: getattr(state, name)
            for name in INSPECTED_FIELDS
            if name in fields and isinstance(getattr(state, name), Tensor)
        }
