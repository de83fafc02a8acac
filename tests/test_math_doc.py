"""The numbers and equivalences that docs/math.md states in words, checked.

Each test is linked from the paragraph that quotes its numbers, so a change of the code or
of the text that makes them disagree fails here.
"""

from __future__ import annotations

import numpy as np
import pytest

from ml_math_nn.optim import make_optimizer


def quadratic_gradient(theta: np.ndarray) -> np.ndarray:
    """Gradient of an anisotropic quadratic, 0.5 * sum(c_j theta_j^2) with c = (1, 10, 0.1)."""
    return np.array([1.0, 10.0, 0.1]) * theta


def nesterov_runs(rates: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """The library's Nesterov SGD and the original look-ahead method, on the same rates.

    Returns the library's parameters and the original's look-ahead point
    ``theta_cl + mu * delta`` after the last step (section 9 of docs/math.md)."""
    mu = 0.9
    theta = np.array([1.0, -2.0, 3.0])
    opt = make_optimizer("sgd", rates[0], momentum=mu, nesterov=True)
    theta_cl, delta = theta.copy(), np.zeros(3)
    for eta in rates:
        opt.lr = eta
        opt.step([("w", theta, quadratic_gradient(theta))])
        delta = mu * delta - eta * quadratic_gradient(theta_cl + mu * delta)
        theta_cl = theta_cl + delta
    return theta, theta_cl + mu * delta


def test_nesterov_is_the_look_ahead_of_the_original_method() -> None:
    ours, look_ahead = nesterov_runs([0.05] * 20)
    np.testing.assert_allclose(ours, look_ahead, rtol=1e-12, atol=1e-15)
    # Exact only for a constant rate: once the rate changes, the two part.
    ours, look_ahead = nesterov_runs([0.05] * 10 + [0.01] * 10)
    assert np.max(np.abs(ours - look_ahead)) > 1e-6


def test_rmsprops_first_step_is_ten_times_the_rate() -> None:
    """From v_0 = 0 the first step is eta / sqrt(1 - 0.99) = 10 eta per coordinate, any gradient size."""
    lr = 1e-3
    theta = np.zeros(4)
    grad = np.array([1e-3, -0.5, 2.0, 300.0])
    make_optimizer("rmsprop", lr).step([("w", theta, grad)])
    np.testing.assert_allclose(theta, -10 * lr * np.sign(grad), rtol=1e-4)
    adam = np.zeros(4)
    make_optimizer("adam", lr).step([("w", adam, grad)])
    np.testing.assert_allclose(adam, -lr * np.sign(grad), rtol=1e-4)


def normal_expectation(f: object) -> float:
    """E[f(z)] for z ~ N(0, 1), by a Riemann sum on [-12, 12] (error far below 1e-6)."""
    z, dz = np.linspace(-12.0, 12.0, 200_001, retstep=True)
    density = np.exp(-(z**2) / 2) / np.sqrt(2 * np.pi)
    return float(np.sum(f(z) * density) * dz)  # type: ignore[operator]


def test_the_numbers_of_the_initialisation_section() -> None:
    second_moment = normal_expectation(lambda z: (1 / (1 + np.exp(-z))) ** 2)
    assert round(second_moment, 3) == 0.293
    # the first-order formula 1/4 + Var/16 is the second moment of the tangent line 1/2 + z/4
    assert normal_expectation(lambda z: (0.5 + z / 4) ** 2) == pytest.approx(0.3125, rel=1e-6)
    alpha = 0.01
    leaky = normal_expectation(lambda z: np.where(z > 0, z, alpha * z) ** 2)
    assert leaky == pytest.approx((1 + alpha**2) / 2, rel=1e-6)
    assert 1 + alpha**2 == pytest.approx(1.0001)
    relu = normal_expectation(lambda z: np.maximum(z, 0) ** 2)
    assert relu == pytest.approx(0.5, rel=1e-6)


def test_the_numbers_of_the_finite_difference_step() -> None:
    eps = np.finfo(np.float64).eps
    assert f"{eps:.1e}" == "2.2e-16"
    assert f"{(3 * eps) ** (1 / 3):.1e}" == "8.7e-06"
    assert f"{eps * 2 / 1e-6:.1e}" == "4.4e-10"  # rounding at h = 1e-6 for a loss of 2


def test_where_the_unshifted_softmax_sum_overflows_and_underflows() -> None:
    """The thresholds section 3 quotes: e^z overflows past about 709 (88 in float32) and
    every term underflows to 0 below about -745 (-104 in float32)."""
    with np.errstate(over="ignore", under="ignore"):
        for dtype, over, under in ((np.float64, 709, -745), (np.float32, 88, -104)):
            assert np.isfinite(np.exp(dtype(over))) and np.isinf(np.exp(dtype(over + 1)))
            assert np.exp(dtype(under + 1)) > 0 and np.exp(dtype(under - 1)) == 0
