"""The rate network: its wiring, one step of its dynamics and the same step's Jacobian, as pure functions.

    phi   = tanh(x)                         rates r = (1 + phi) / 2, in 0..1
    x'    = (1 - leak) x + leak (gain W phi + b + h) + noise * xi

W = J + M: J is Gaussian with variance 1/N (Sompolinsky, Crisanti and Sommers 1988: the bulk of J's spectrum
fills the unit disc, so the network is ordered for gain below about 1 and chaotic above), M a weak modular
structure (each module excites itself, inhibits the others). h is the input common to all units, xi the
private noise. The Jacobian of the step is (1 - leak) I + leak gain W diag(1 - phi^2).
"""

from __future__ import annotations

import numpy as np
from numpy.random import Generator

from .state import Network, frozen

WITHIN_STRENGTH = 0.0  # total excitation a unit gets from its own module fully active (phi = 1)
BETWEEN_STRENGTH = 0.0  # total inhibition a unit gets from the other modules fully active
BIAS_SPREAD = 0.0  # heterogeneity of the units' thresholds


def build_network(units: int, modules: int, rng: Generator) -> Network:
    """Draw the random coupling J, add the modular structure M and draw the thresholds."""
    module = (np.arange(units) * modules) // units
    random_part = rng.standard_normal((units, units))
    np.fill_diagonal(random_part, 0.0)
    # balanced rows (Rajan and Abbott 2006): each unit's inputs sum to zero, so an input common to all
    # units moves them together instead of being spread over them by the random part
    off = ~np.eye(units, dtype=bool)
    random_part[off] -= np.repeat(random_part.sum(axis=1) / (units - 1), units - 1)
    # scaled to spectral radius 1 (the large-N value of a variance-1/N matrix, exact here): the origin loses
    # its stability at gain 1 for every seed, not at a seed-dependent gain near it
    random_part /= np.abs(np.linalg.eigvals(random_part)).max()
    same = module[:, None] == module[None, :]
    np.fill_diagonal(same, False)
    other = module[:, None] != module[None, :]
    structure = np.where(same, WITHIN_STRENGTH / np.maximum(same.sum(axis=1, keepdims=True), 1), 0.0)
    structure -= np.where(other, BETWEEN_STRENGTH / np.maximum(other.sum(axis=1, keepdims=True), 1), 0.0)
    bias = rng.normal(0.0, BIAS_SPREAD, units)
    return Network(coupling=frozen(random_part + structure), bias=frozen(bias), module=frozen(module.astype(np.int64)))


def rates_of(x: np.ndarray) -> np.ndarray:
    """Rates in 0..1 of currents `x`."""
    return 0.5 * (1.0 + np.tanh(x))


def network_step(
    network: Network, x: np.ndarray, *, gain: float, common: float, noise: np.ndarray, leak: float
) -> tuple[np.ndarray, np.ndarray]:
    """(x', recurrent input gain W phi): one step at `gain`, with common input `common` and private noise `noise`."""
    recurrent = gain * (network.coupling @ np.tanh(x))
    return (1.0 - leak) * x + leak * (recurrent + network.bias + common) + noise, recurrent


def network_tangent(network: Network, x: np.ndarray, v: np.ndarray, *, gain: float, leak: float) -> np.ndarray:
    """The step's Jacobian at x applied to the tangent vector v (noise and inputs are additive: they drop out)."""
    phi = np.tanh(x)
    return (1.0 - leak) * v + leak * gain * (network.coupling @ ((1.0 - phi * phi) * v))
