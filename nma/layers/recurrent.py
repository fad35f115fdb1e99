"""``RecurrentMemoryLayer``: controller + memory with the ``nn.LSTM`` calling convention."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from nma.build import build_controller
from nma.layers.components import MemorySpec, resolve_memory, to_time_major
from nma.model import MemoryModel, ModelState


class RecurrentMemoryLayer(MemoryModel):
    """A registered controller driving a registered memory: ``output, state = layer(input, state)``.

    It is the core's :class:`~nma.model.MemoryModel` (DESIGN.md, the assembled model)::

        h_t, c_t = controller(x_t ++ r_{t-1}, c_{t-1})
        r_t, m_t = memory(W_i h_t, m_{t-1})
        y_t      = W_o (h_t ++ r_t)

    built from names, with ``nn.LSTM``'s conventions: time-major unless
    ``batch_first``, an optional initial state, the final state returned. The state
    is a :class:`~nma.model.ModelState` (controller, memory, reads), so a long
    sequence can be run in pieces, carrying it (detach it with
    :func:`nma.detach_state` for truncated back-propagation).

    Args:
        input_size: ``F``, the width of one step's input.
        hidden_size: the controller's width (its ``hidden_size`` option).
        memory: a registered memory's name or a built :class:`nma.Memory`.
        controller: a registered controller's name: ``lstm``, ``gru``, ``mlp``,
            ``transformer`` (whose ``heads``, 4 by default, must divide ``hidden_size``).
        memory_options: the memory's options when ``memory`` is a name.
        controller_options: further controller options (``layers``, ``window``, ...).
        addressing: the addressing scheme when ``memory`` is a name and takes one.
        addressing_options: that scheme's options.
        output_size: the width of ``y_t``; ``hidden_size`` if ``None``.
        batch_first: input and output are ``(B, T, ...)``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        memory: MemorySpec = "ntm",
        controller: str = "lstm",
        memory_options: dict[str, Any] | None = None,
        controller_options: dict[str, Any] | None = None,
        addressing: str | None = None,
        addressing_options: dict[str, Any] | None = None,
        output_size: int | None = None,
        batch_first: bool = False,
    ) -> None:
        mem = resolve_memory(memory, memory_options, addressing, addressing_options)
        ctrl = build_controller(
            controller,
            input_size + mem.fed_reads_size(),
            {"hidden_size": hidden_size, **(controller_options or {})},
        )
        super().__init__(ctrl, mem, output_size if output_size is not None else hidden_size)
        self.hidden_size = hidden_size
        self.batch_first = batch_first

    def forward(self, inputs: Tensor, state: ModelState | None = None) -> tuple[Tensor, ModelState]:
        """Run a sequence.

        Args:
            inputs: ``(T, B, input_size)``, or ``(B, T, input_size)`` when ``batch_first``.
            state: the state to start from; the initial state if ``None``.

        Returns:
            ``(output, state)``: ``(T, B, output_size)`` (``(B, T, output_size)`` when
            ``batch_first``) and the final :class:`~nma.model.ModelState`.
        """
        outputs, state = super().forward(to_time_major(inputs, self.batch_first), state)
        return to_time_major(outputs, self.batch_first), state
