"""The rate network: its wiring, one step of its dynamics and the same step's Jacobian, as pure functions.

    phi   = tanh(x)                         rates r = (1 + phi) / 2, in 0..1
    x'    = (1 - leak) x + leak (gain J phi + h) + noise * xi

J is a random Gaussian coupling (Sompolinsky, Crisanti and Sommers 1988: with J's spectrum filling the unit
disc, the network is ordered for gain below 1 and chaotic above), h the input common to all units, xi the
private noise. The Jacobian of the step is (1 - leak) I + leak gain J diag(1 - phi^2).
"""

from __future__ import annotations

import numpy as np
from numpy.random import Generator

from .state import Network, frozen

def build_network(units: int, rng: Generator) -> Network:
    """Draw the random coupling J: Gaussian, zero diagonal, balanced rows, spectral radius 1."""
    coupling = rng.standard_normal((units, units))
    np.fill_diagonal(coupling, 0.0)
    # balanced rows (Rajan and Abbott 2006): each unit's inputs sum to zero, so an input common to all
    # units moves them together instead of being spread over them by the random part
    off = ~np.eye(units, dtype=bool)
    coupling[off] -= np.repeat(coupling.sum(axis=1) / (units - 1), units - 1)
    # scaled to spectral radius 1 (the large-N value of a variance-1/N matrix, exact here): the origin loses
    # its stability at gain 1 for every seed, not at a seed-dependent gain near it
    coupling /= np.abs(np.linalg.eigvals(coupling)).max()
    return Network(coupling=frozen(coupling))


def rates_of(x: np.ndarray) -> np.ndarray:
    """Rates in 0..1 of currents `x`."""
    return 0.5 * (1.0 + np.tanh(x))


def network_advance(
    network: Network, x: np.ndarray, v: np.ndarray, *, gain: float, common: float, noise: np.ndarray, leak: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x', recurrent input gain J phi, Jacobian at x applied to the tangent v): one step at `gain` with common
    input `common` and private noise `noise` (noise and inputs are additive: they drop out of the tangent)."""
    phi = np.tanh(x)
    recurrent = network.coupling @ phi
    recurrent *= gain
    pushed = network.coupling @ ((1.0 - phi * phi) * v)
    if leak == 1.0:  # the plain map: nothing of x is kept (and 0 * x would cost two array operations)
        pushed *= gain
        return (recurrent + common) + noise, recurrent, pushed
    pushed *= leak * gain
    pushed += (1.0 - leak) * v
    return (1.0 - leak) * x + leak * (recurrent + common) + noise, recurrent, pushed
