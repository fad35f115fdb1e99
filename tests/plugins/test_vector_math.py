"""The native kernels' own e^x, ln x, tanh x and logistic function
(``csrc/vector_math.h``), which their float32 loops use instead of libm's scalar calls,
against float64 values: within a few units in the last place of a float32 over the
whole range, and IEEE's answers at the edges."""

from __future__ import annotations

import math

import pytest
import torch

from nma_plugins import native

ULP = 2.0**-23
"""A unit in the last place of a float32 in [1, 2)."""


@pytest.fixture(scope="module")
def elementary():  # noqa: ANN201 - the operator
    return native.native_ops().elementary  # CI builds them: test_native.py checks


def relative_error(got: torch.Tensor, want: torch.Tensor) -> torch.Tensor:
    return ((got.double() - want) / want.abs()).abs()


def test_exp_is_within_two_units_in_the_last_place(elementary) -> None:  # noqa: ANN001
    x = torch.linspace(-87.0, 88.5, 2_000_003, dtype=torch.float32)
    got = elementary(x)[0]
    error = relative_error(got, torch.exp(x.double()))
    assert error.max().item() < 2 * ULP


def test_log_is_within_two_units_in_the_last_place(elementary) -> None:  # noqa: ANN001
    # Every exponent of a normal float32, with mantissas spread over [1, 2).
    gen = torch.Generator().manual_seed(0)
    mantissa = 1 + torch.rand(4096, generator=gen, dtype=torch.float64)
    exponent = torch.arange(-126, 128, dtype=torch.float64)
    x = (mantissa[None, :] * 2.0 ** exponent[:, None]).float().flatten()
    x = x[torch.isfinite(x)]
    got = elementary(x)[1]
    want = torch.log(x.double())
    # Relative to the result's own magnitude, but never finer than one ulp of 1 (near
    # x = 1 the result is near 0, where float32's absolute resolution is what counts).
    error = (got.double() - want).abs() / want.abs().clamp_min(1.0)
    assert error.max().item() < 2 * ULP
    assert torch.all(got[x == 1] == 0)


def test_log_of_subnormals(elementary) -> None:  # noqa: ANN001
    x = torch.tensor([1e-45, 1e-40, 2e-39, 1e-38], dtype=torch.float32)
    got = elementary(x)[1]
    assert torch.allclose(got.double(), torch.log(x.double()), rtol=2 * ULP, atol=0)


def test_special_values(elementary) -> None:  # noqa: ANN001
    inf = math.inf
    x = torch.tensor([0.0, -0.0, -1.0, inf, -inf, math.nan, 89.0, -88.0, -200.0])
    exps, logs, tanhs, sigmoids = elementary(x)
    assert exps[0].item() == 1.0 and exps[1].item() == 1.0
    assert exps[3].item() == inf and exps[4].item() == 0.0 and math.isnan(exps[5].item())
    assert exps[6].item() == inf  # above the largest float32
    assert exps[7].item() == 0.0 and exps[8].item() == 0.0  # subnormal results are 0
    assert logs[0].item() == -inf and logs[1].item() == -inf
    assert math.isnan(logs[2].item()) and logs[3].item() == inf
    assert math.isnan(logs[4].item()) and math.isnan(logs[5].item())
    assert tanhs[0].item() == 0.0 and math.copysign(1.0, tanhs[1].item()) == -1.0
    assert tanhs[3].item() == 1.0 and tanhs[4].item() == -1.0 and math.isnan(tanhs[5].item())
    assert sigmoids[0].item() == 0.5 and sigmoids[3].item() == 1.0
    assert sigmoids[4].item() == 0.0 and math.isnan(sigmoids[5].item())


def test_float64_is_libm(elementary) -> None:  # noqa: ANN001
    x = torch.linspace(0.01, 50.0, 1001, dtype=torch.float64)
    exps, logs, tanhs, sigmoids = elementary(x)
    assert torch.allclose(exps, torch.exp(x), rtol=1e-15, atol=0)
    assert torch.allclose(logs, torch.log(x), rtol=1e-15, atol=0)
    assert torch.allclose(tanhs, torch.tanh(x), rtol=1e-15, atol=0)
    assert torch.allclose(sigmoids, torch.sigmoid(x), rtol=1e-15, atol=0)


def test_tanh_is_within_three_units_in_the_last_place(elementary) -> None:  # noqa: ANN001
    # Both signs, tiny to saturated, and densely around the switch to the series at 1/4.
    x = torch.cat(
        [
            torch.logspace(-30, 1.3, 400_001, dtype=torch.float64),
            torch.linspace(0.2, 0.3, 100_001, dtype=torch.float64),
        ]
    ).float()
    x = torch.cat([x, -x])
    got = elementary(x)[2]
    error = relative_error(got, torch.tanh(x.double()))
    assert error.max().item() < 3 * ULP


def test_sigmoid_is_within_three_units_in_the_last_place(elementary) -> None:  # noqa: ANN001
    x = torch.linspace(-87.0, 30.0, 1_000_001, dtype=torch.float32)
    got = elementary(x)[3]
    error = relative_error(got, torch.sigmoid(x.double()))
    assert error.max().item() < 3 * ULP
