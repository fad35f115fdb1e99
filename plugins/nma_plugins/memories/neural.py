"""Neural long-term memory learned at test time (Titans).

Behrouz, Zhong & Mirrokni (2024), "Titans: Learning to Memorize at Test Time",
arXiv:2501.00663, section 3.1. The memory is a small MLP ``M`` whose weights are the
state: every step writes by one gradient step (with momentum and weight decay) on
an associative loss, and reads by a forward pass. With the key ``k_t``, value
``v_t`` and query ``q_t`` (``W`` values each) and the data-dependent gates
``eta_t`` (momentum), ``theta_t`` (step size) and ``alpha_t`` (forgetting), all in
``(0, 1)`` through sigmoids:

    l(M_{t-1}; x_t) = |M_{t-1}(k_t) - v_t|^2                     loss       (eq. 12)
    S_t = eta_t S_{t-1} - theta_t grad l(M_{t-1}; x_t)           surprise   (eq. 10/14)
    M_t = (1 - alpha_t) M_{t-1} + S_t                            forgetting (eq. 13)
    y_t = M_t(q_t)                                               read       (eq. 15)

(the read is a forward pass with the weights just written, ``M* = M_t``, and no
weight update). ``M`` has ``depth`` layers without biases, ``hidden`` units in
each hidden layer and the activation ``sigma`` between layers:

    h_0 = k,  z_j = W_j h_{j-1},  h_j = sigma(z_j)  (j < depth),  M(k) = W_depth h_{depth-1}

so ``depth = 1`` is the linear memory ``M(k) = W_1 k``. The gradient is computed in
closed form (back-propagation written out), batched over the batch with einsum:

    delta_depth = 2 (M(k) - v)
    grad W_j    = delta_j h_{j-1}^T
    delta_{j-1} = (W_j^T delta_j) o sigma'(z_{j-1})

It is built from differentiable tensor operations, so training back-propagates
through every memory update (second derivatives of ``sigma`` included).

Guards, so that thousands of float32 steps stay finite: keys and queries are
l2-normalised as in the paper (``k <- k / max(|k|, eps)``, option ``normalize_keys``),
and the gradient of every batch element is clipped to the norm ``max_grad_norm``
(``g <- g min(1, c / (|g| + eps))``, over all layers together; 0 turns it off).

Shapes use ``B`` for the batch, ``W`` for the key/value width and ``P`` for the
number of memory weights (all layers flattened, layer 1 first, each row-major
``(out, in)``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from nma import AddressingFactory, Memory, Options
from nma_plugins.memories.associative import l2_normalize

Activation = Literal["silu", "gelu", "tanh", "relu"]


def _silu_grad(x: Tensor) -> Tensor:
    s = torch.sigmoid(x)
    return s * (1 + x * (1 - s))


def _gelu_grad(x: Tensor) -> Tensor:
    # gelu(x) = x Phi(x), so gelu'(x) = Phi(x) + x phi(x) (the exact, erf-based gelu).
    cdf = 0.5 * (1 + torch.erf(x / math.sqrt(2)))
    pdf = torch.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    return cdf + x * pdf


def _tanh_grad(x: Tensor) -> Tensor:
    return 1 - torch.tanh(x) ** 2


def _relu_grad(x: Tensor) -> Tensor:
    return (x > 0).to(x.dtype)


ACTIVATIONS: dict[str, tuple[Callable[[Tensor], Tensor], Callable[[Tensor], Tensor]]] = {
    "silu": (F.silu, _silu_grad),
    "gelu": (F.gelu, _gelu_grad),
    "tanh": (torch.tanh, _tanh_grad),
    "relu": (F.relu, _relu_grad),
}
"""Each activation with its derivative, both written with differentiable operations."""


class NeuralState(NamedTuple):
    """The recurrent state of :class:`NeuralMemory` after a step.

    Attributes:
        weights: ``(B, P)`` the memory's weights ``M_t``, flattened.
        momentum: ``(B, P)`` the surprise ``S_t``, flattened alike.
        loss: ``(B,)`` the associative loss ``l(M_{t-1}; x_t)`` before the write.
        grad_norm: ``(B,)`` the norm of the momentary surprise ``grad l`` (before
            clipping).
        gates: ``(B, 3)`` ``eta_t, theta_t, alpha_t``.
    """

    weights: Tensor
    momentum: Tensor
    loss: Tensor
    grad_norm: Tensor
    gates: Tensor


def mlp_forward(
    weights: list[Tensor], x: Tensor, activation: Callable[[Tensor], Tensor]
) -> tuple[Tensor, list[Tensor], list[Tensor]]:
    """The memory's forward pass, one MLP per batch element.

    Args:
        weights: ``depth`` tensors ``(B, out_j, in_j)``.
        x: ``(B, in_1)`` the input ``h_0``.
        activation: ``sigma``, applied after every layer but the last.

    Returns:
        ``(y, pre, post)``: the output ``(B, out_depth)``, the pre-activations
        ``z_1..z_{depth-1}`` and the layer inputs ``h_0..h_{depth-1}``.
    """
    h = x
    pre: list[Tensor] = []
    post: list[Tensor] = [x]
    for layer in weights[:-1]:
        z = torch.einsum("boi,bi->bo", layer, h)
        h = activation(z)
        pre.append(z)
        post.append(h)
    return torch.einsum("boi,bi->bo", weights[-1], h), pre, post


def mlp_gradient(
    weights: list[Tensor],
    keys: Tensor,
    values: Tensor,
    activation: Callable[[Tensor], Tensor],
    derivative: Callable[[Tensor], Tensor],
) -> tuple[list[Tensor], Tensor]:
    """The gradient of ``l = |M(k) - v|^2`` (eq. 12) with respect to every layer.

    Back-propagation written out (see the module docstring), differentiable itself.

    Args:
        weights: ``depth`` tensors ``(B, out_j, in_j)``.
        keys: ``(B, W)`` keys ``k``.
        values: ``(B, W)`` values ``v``.
        activation: ``sigma``.
        derivative: ``sigma'``.

    Returns:
        ``(grads, loss)``: ``grads[j]`` ``(B, out_j, in_j)`` and ``loss`` ``(B,)``.
    """
    y, pre, post = mlp_forward(weights, keys, activation)
    error = y - values
    delta = 2 * error  # (B, W): dl/dy
    grads: list[Tensor] = [delta] * len(weights)
    for j in range(len(weights) - 1, -1, -1):
        grads[j] = torch.einsum("bo,bi->boi", delta, post[j])
        if j > 0:
            delta = torch.einsum("boi,bo->bi", weights[j], delta) * derivative(pre[j - 1])
    return grads, (error * error).sum(dim=-1)


class NeuralMemory(Memory):
    """Titans' neural long-term memory (Behrouz et al. 2024, section 3.1, eqs. 10-15).

    Interface layout, per step and per batch element (``interface_size = 3W + 3``)::

        [ key W | value W | query W | eta 1 | theta 1 | alpha 1 ]

        key, query  l2-normalised when ``normalize_keys`` (unconstrained otherwise)
        value       unconstrained (the target of the associative loss)
        eta         momentum decay eta_t = sigmoid
        theta       step size theta_t = sigmoid
        alpha       forgetting alpha_t = sigmoid

    A step writes (eqs. 10, 12, 13), then reads ``y_t = M_t(q_t)`` (eq. 15):
    ``read_size = W``. The initial weights ``M_0`` are learned parameters
    (``initial_weights``, flattened), expanded over the batch.

    Args:
        config: a :class:`NeuralMemory.Config`.
        addressing: unused (the memory has no slots); must be ``None``.
    """

    class Config(Options):
        """Options of the neural memory."""

        width: int = Field(20, ge=1, description="W: the size of keys, values and queries.")
        hidden: int = Field(32, ge=1, description="Units in each hidden layer of the MLP.")
        depth: int = Field(
            2, ge=1, le=8, description="Layers of the memory MLP; 1 is a linear memory."
        )
        activation: Activation = Field("silu", description="The MLP's hidden activation.")
        normalize_keys: bool = Field(
            True, description="l2-normalise keys and queries, as the paper does."
        )
        max_grad_norm: float = Field(
            10.0,
            ge=0,
            description="Clip each element's inner gradient to this norm; 0 turns it off.",
        )
        eps: float = Field(1e-6, gt=0, description="Added to norms before dividing by them.")

    default_addressing = None
    config: Config

    def __init__(self, config: Config, addressing: AddressingFactory | None = None) -> None:
        super().__init__(config, addressing)
        if addressing is not None:
            raise ValueError("NeuralMemory takes no addressing scheme.")
        self.width = config.width
        dims = [config.width] + [config.hidden] * (config.depth - 1) + [config.width]
        self.shapes = [(dims[j + 1], dims[j]) for j in range(config.depth)]
        self.sizes = [out * inp for out, inp in self.shapes]
        self.params = sum(self.sizes)
        self.interface_size = 3 * config.width + 3
        self.read_size = config.width
        self.activation, self.derivative = ACTIVATIONS[config.activation]
        init = [
            torch.empty(out * inp).uniform_(-1 / math.sqrt(inp), 1 / math.sqrt(inp))
            for out, inp in self.shapes
        ]
        self.initial_weights = nn.Parameter(torch.cat(init))  # (P,)

    def layers(self, flat: Tensor) -> list[Tensor]:
        """Split flattened weights ``(B, P)`` into the layers ``(B, out_j, in_j)``."""
        parts = torch.split(flat, self.sizes, dim=-1)
        return [
            p.reshape(flat.shape[0], *shape) for p, shape in zip(parts, self.shapes, strict=True)
        ]

    def initial_state(
        self, batch_size: int, device: torch.device, dtype: torch.dtype
    ) -> NeuralState:
        """The state before the first step.

        Args:
            batch_size: ``B``.
            device: where the state lives.
            dtype: its floating-point type.

        Returns:
            A :class:`NeuralState`: ``weights`` the learned ``initial_weights``
            expanded over the batch (gradients reach them), zero momentum, zero
            statistics.
        """
        weights = self.initial_weights.to(device=device, dtype=dtype)
        zeros = torch.zeros(batch_size, device=device, dtype=dtype)
        return NeuralState(
            weights=weights.unsqueeze(0).expand(batch_size, self.params),
            momentum=torch.zeros(batch_size, self.params, device=device, dtype=dtype),
            loss=zeros,
            grad_norm=zeros.clone(),
            gates=torch.zeros(batch_size, 3, device=device, dtype=dtype),
        )

    def forward(self, interface: Tensor, state: NeuralState) -> tuple[Tensor, NeuralState]:
        """One gradient step with momentum and forgetting (eqs. 10-13), then a read (eq. 15).

        Args:
            interface: ``(B, 3W + 3)`` unconstrained controller outputs, laid out as
                described in the class docstring.
            state: the previous :class:`NeuralState`.

        Returns:
            ``(reads, state)``: ``reads`` ``(B, W)`` is ``M_t(q_t)``; the new state.
        """
        w, eps = self.width, self.config.eps
        keys = interface[:, :w]
        values = interface[:, w : 2 * w]
        queries = interface[:, 2 * w : 3 * w]
        gates = torch.sigmoid(interface[:, 3 * w :])  # (B, 3)
        eta, theta, alpha = gates[:, 0:1], gates[:, 1:2], gates[:, 2:3]  # (B, 1) each
        if self.config.normalize_keys:
            keys = l2_normalize(keys, eps)
            queries = l2_normalize(queries, eps)

        grads, loss = mlp_gradient(
            self.layers(state.weights), keys, values, self.activation, self.derivative
        )
        grad = torch.cat([g.flatten(1) for g in grads], dim=1)  # (B, P)
        grad_norm = torch.linalg.vector_norm(grad, dim=-1)  # (B,)
        if self.config.max_grad_norm > 0:
            scale = torch.clamp(self.config.max_grad_norm / (grad_norm + eps), max=1.0)
            grad = grad * scale.unsqueeze(-1)
        momentum = eta * state.momentum - theta * grad  # eq. (10)
        weights = (1 - alpha) * state.weights + momentum  # eq. (13)
        reads, _, _ = mlp_forward(self.layers(weights), queries, self.activation)  # eq. (15)
        return reads, NeuralState(weights, momentum, loss, grad_norm, gates)

    def inspect(self, state: NeuralState) -> dict[str, Tensor]:
        """What the step that produced ``state`` did. The memory has no slots, so there
        are no ``read_weights``, ``write_weights``, ``usage`` or ``memory``.

        Returns:
            ``{"loss": (B,)`` the associative loss before the write, ``"grad_norm":
            (B,)`` the momentary surprise ``|grad l|``, ``"surprise": (B,)`` the norm
            of ``S_t``, ``"weight_norms": (B, depth)`` the Frobenius norm of every
            layer of ``M_t``, ``"gates": (B, 3)`` ``eta, theta, alpha}``.
        """
        norms = [torch.linalg.vector_norm(p, dim=-1) for p in state.weights.split(self.sizes, -1)]
        return {
            "loss": state.loss,
            "grad_norm": state.grad_norm,
            "surprise": torch.linalg.vector_norm(state.momentum, dim=-1),
            "weight_norms": torch.stack(norms, dim=-1),
            "gates": state.gates,
        }
