"""Running window sums of the rates, and the window figures read from them without re-reading the windows.

Two windows end at the newest tick: the history window (connectivity) and its last unity_window ticks (unity,
multi-state). Each keeps, for a vector u per tick, sum(u) and sum(u u^T), laid out as one (units + 2, units + 1)
block: row 0 the sum, rows 1.. the outer products. With M the tick's population mean rate,

    history window:  u = (r - 1/2, M - 1/2)      its covariance's unit block is C, the covariance of the rates
    unity window:    u = (r - M,   M - 1/2)      its unit block is P C P (P = I - 11^T/N), its last entry var(M)

so C gives connectivity, and P C P with var(M) give synchrony and spectral spread (measures.common_mode_figures)
with no N x N pass besides the covariance itself. Centring keeps the sums small, so the running covariance
loses no digits to cancellation. A tick adds its vector and removes the leaving tick's in one batched rank-2
product; the sums are recomputed exactly once a history window, against drift.
"""

from __future__ import annotations

import functools

import numpy as np

from .measures import common_mode_figures, covariances_of_sums, mean_abs_correlation
from .state import frozen

_SINGLE_THREADED = 200_000  # m n k of a matrix product OpenBLAS computes without its threads
_ADD_REMOVE = np.array((1.0, -1.0))[:, None]  # signs of the vector entering and the vector leaving a window


@functools.cache
def ones(size: int) -> np.ndarray:
    """A read-only vector of ones: a dot with it sums an array in one BLAS call, cheaper than .sum()."""
    return frozen(np.ones(size))


def _vectors(rates: np.ndarray, means: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The vectors (1, u), one per entry of `means` (k,), of rates (k or 1, units) with those population means,
    the unit part centred on `offsets` (a number or (k, 1))."""
    out = np.empty((means.shape[0], rates.shape[-1] + 2))
    out[..., 0] = 1.0
    np.subtract(rates, offsets, out=out[..., 1:-1])
    np.subtract(means, 0.5, out=out[..., -1])
    return out


def sums_of(history: np.ndarray, unity_window: int) -> np.ndarray:
    """The window sums (2, units + 2, units + 1) of a history buffer (ticks, units), computed from scratch."""
    means = history @ ones(history.shape[1]) / history.shape[1]
    whole = _vectors(history, means, 0.5)
    recent = _vectors(history[-unity_window:], means[-unity_window:], means[-unity_window:, None])
    return np.stack([_gram(v)[:, 1:] for v in (whole, recent)])


def _gram(v: np.ndarray) -> np.ndarray:
    """v.T @ v, summed over blocks of rows small enough that OpenBLAS runs each on this thread: past
    m n k = 65536 * 4 it hands the product to its threads, which costs milliseconds on a busy machine."""
    rows = max(1, _SINGLE_THREADED // (v.shape[1] * v.shape[1]))
    out = np.zeros((v.shape[1], v.shape[1]))
    for start in range(0, v.shape[0], rows):
        block = v[start : start + rows]
        out += block.T @ block
    return out


def sums_slid(sums: np.ndarray, rates: np.ndarray, mean: float, leaving: np.ndarray) -> np.ndarray:
    """The window sums after the tick `rates` (population mean `mean`) enters both windows and the rows
    `leaving` (2, units) leave the history window and the unity window respectively."""
    n = rates.shape[0]
    leaving_means = leaving @ ones(n) / n  # the same arithmetic as `mean` had when each row entered
    pairs = np.empty((2, 2, n + 2))  # [window, entering or leaving, (1, u)]
    pairs[:, 0] = _vectors(rates, np.array((mean, mean)), np.array(((0.5,), (mean,))))
    pairs[:, 1] = _vectors(leaving, leaving_means, np.array(((0.5,), (leaving_means[1],))))
    return sums + pairs.transpose(0, 2, 1) @ (pairs[:, :, 1:] * _ADD_REMOVE)


@functools.cache
def _counts(history_window: int, unity_window: int) -> np.ndarray:
    return frozen(np.array((history_window, unity_window), dtype=np.float64))


def window_figures_of_sums(
    sums: np.ndarray, history_window: int, unity_window: int
) -> tuple[float, float, float]:
    """(connectivity of the history window, consciousness_unity and multi-state of the unity window)."""
    cov = covariances_of_sums(sums, _counts(history_window, unity_window))
    connectivity = mean_abs_correlation(cov[0, :-1, :-1])
    unity, multi_state = common_mode_figures(cov[1, :-1, :-1], float(cov[1, -1, -1]))
    return connectivity, unity, multi_state
