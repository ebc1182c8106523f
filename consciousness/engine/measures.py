"""Pure figures computed from arrays: entropy, window statistics, Lyapunov exponents, fractal dimension.

The window figures (unity, multi-state, entanglement, connectivity) are defined here once, as functions of a
(ticks x units) window; the engine keeps running sums so that it need not recompute them, and analysis
scripts call the same functions on the window they are handed.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np

_FLAT = 1e-12  # below this a variance or a distance counts as zero
_FLAT_STD = math.sqrt(_FLAT)


def shannon_entropy_normalized(values: np.ndarray, bins: int) -> float:
    """Shannon entropy of the histogram of `values` over `bins` equal bins of [0, 1], divided by log(bins)."""
    if bins < 2:
        raise ValueError("bins must be at least 2")
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        return 0.0
    return rates_entropy(np.minimum(np.maximum(x, 0.0), 1.0), bins)


def rates_entropy(rates: np.ndarray, bins: int) -> float:
    """`shannon_entropy_normalized` of a non-empty 1-D array already in [0, 1] (the engine's rates)."""
    # bincount over bin indices: same as np.histogram on [0, 1] (last bin closed) and much cheaper
    idx = (rates * bins).astype(np.intp)
    np.minimum(idx, bins - 1, out=idx)
    counts = np.bincount(idx, minlength=bins)
    p = counts[counts > 0] * (1.0 / rates.size)
    # 0.0 minus, not unary minus: one bin gives +0.0 rather than -0.0, which the stream and the history would
    # write differently (SQLite keeps no sign on zero)
    return float(0.0 - np.dot(p, np.log(p)) / math.log(bins))


# --- window statistics: sums -> covariance -> figures -------------------------------------------------


def window_sums(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sum of rows, sum of outer products) of a (ticks x units) window, the running sums the engine keeps."""
    x = np.asarray(samples, dtype=np.float64)
    return x.sum(axis=0), x.T @ x


def covariance_of_sums(s1: np.ndarray, s2: np.ndarray, count: int) -> np.ndarray:
    """Population covariance (divided by `count`) of the units from their running sums."""
    mean = s1 / count
    return s2 / count - mean[:, None] * mean[None, :]


def covariances_of_sums(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """`covariance_of_sums` of k windows at once: sums (k, units + 1, units) holding each window's sum of rows
    (row 0) and sum of outer products (rows 1..), counts (k,) their lengths; returns (k, units, units)."""
    mean = sums[:, 0] / counts[:, None]
    cov = sums[:, 1:] / counts[:, None, None]
    cov -= mean[:, :, None] * mean[:, None, :]
    return cov


def covariance(samples: np.ndarray) -> np.ndarray:
    """Population covariance of the columns of a (ticks x units) window."""
    s1, s2 = window_sums(samples)
    return covariance_of_sums(s1, s2, np.asarray(samples).shape[0])


def correlation_of_covariance(cov: np.ndarray) -> np.ndarray:
    """Pearson correlation from a covariance; a flat unit correlates 0 with the others and 1 with itself."""
    std = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    live = std > math.sqrt(_FLAT)
    inv = np.where(live, 1.0 / np.where(live, std, 1.0), 0.0)
    corr = cov * inv[:, None] * inv[None, :]
    np.fill_diagonal(corr, 1.0)
    return np.clip(corr, -1.0, 1.0)


def correlation_matrix(samples: np.ndarray) -> np.ndarray:
    """Pearson correlation of the columns of `samples` (time x units); a flat unit correlates 0 with others."""
    return correlation_of_covariance(covariance(samples))


def mean_abs_offdiagonal(corr: np.ndarray) -> float:
    """Mean |correlation| over distinct pairs of units."""
    n = corr.shape[0]
    if n < 2:
        return 0.0
    return float((np.abs(corr).sum() - np.trace(np.abs(corr))) / (n * (n - 1)))


def mean_abs_correlation(cov: np.ndarray) -> float:
    """Mean |Pearson correlation| over distinct pairs of units, straight from a covariance (flat units count 0)."""
    n = cov.shape[0]
    if n < 2:
        return 0.0
    std = np.sqrt(np.maximum(cov.diagonal(), 0.0))
    live = std > _FLAT_STD
    inv = np.divide(1.0, std, out=np.zeros(n), where=live)
    total = float(inv @ np.abs(cov) @ inv) - float(np.count_nonzero(live))  # the diagonal adds 1 per live unit
    return float(min(max(total / (n * (n - 1)), 0.0), 1.0))


def synchrony(cov: np.ndarray) -> float:
    """Golomb's synchrony chi^2: variance of the population mean over the mean variance of the units, 0..1."""
    n = cov.shape[0]
    mean_var = float(cov.trace()) / n
    if mean_var <= _FLAT:
        return 0.0
    return float(min(max(float(cov.sum()) / (n * n * mean_var), 0.0), 1.0))


def participation_ratio(cov: np.ndarray) -> float:
    """Participation ratio (tr C)^2 / tr C^2 of a covariance: the number of modes in use, 1..N (0 when flat)."""
    total = float(cov.trace())
    squares = float(np.vdot(cov, cov))  # = sum of squared eigenvalues, C symmetric
    if total <= _FLAT or squares <= _FLAT * _FLAT:
        return 0.0
    return total * total / squares


def spectral_spread(cov: np.ndarray) -> float:
    """How many independent modes the units use besides their common one: the Renyi-2 entropy of the spectrum
    of the covariance with the population-mean mode projected out, over its maximum, log(PR) / log(N - 1);
    0 when at most one mode remains, 1 when N - 1 modes carry equal shares."""
    n = cov.shape[0]
    row = cov.sum(axis=1) * (1.0 / n)
    residual = cov - row[:, None] - row[None, :] + float(row.sum()) / n  # P C P with P = I - 11^T / N
    ratio = participation_ratio(residual)
    if ratio <= 1.0 or n < 3:
        return 0.0
    return float(min(math.log(ratio) / math.log(n - 1), 1.0))


def common_mode_figures(residual: np.ndarray, mean_variance: float) -> tuple[float, float]:
    """(synchrony, spectral_spread) of a covariance C given as P C P, its part without the population-mean
    mode (the covariance of the rates less each tick's population mean), and var(M), the variance of the
    population mean: tr C = tr PCP + N var(M) and 1'C1 = N^2 var(M), so neither needs C itself."""
    n = residual.shape[0]
    trace = float(residual.trace())
    common = n * max(mean_variance, 0.0)
    unity = 0.0 if (trace + common) / n <= _FLAT else float(min(max(common / (trace + common), 0.0), 1.0))
    squares = float(np.vdot(residual, residual))
    if n < 3 or trace <= _FLAT or squares <= _FLAT * _FLAT or trace * trace <= squares:
        return unity, 0.0
    return unity, float(min(math.log(trace * trace / squares) / math.log(n - 1), 1.0))


def half_coherence(cov: np.ndarray) -> float:
    """|Pearson correlation| between the mean activity of the first and the second half of the units."""
    half = cov.shape[0] // 2
    var_a = float(cov[:half, :half].sum()) / (half * half)
    var_b = float(cov[half:, half:].sum()) / ((cov.shape[0] - half) ** 2)
    if var_a <= _FLAT or var_b <= _FLAT:
        return 0.0
    cross = float(cov[:half, half:].sum()) / (half * (cov.shape[0] - half))
    return float(min(abs(cross) / math.sqrt(var_a * var_b), 1.0))


def recurrent_share(recurrent: np.ndarray, common: float, noise: np.ndarray) -> float:
    """Share of the units' input power that comes from the other units: |r|^2 / (|r|^2 + N h^2 + |xi|^2)
    for the recurrent input r, the common input h and the noise xi; 0 when there is no input at all."""
    rec = float(np.dot(recurrent, recurrent))
    total = rec + recurrent.shape[0] * common * common + float(np.dot(noise, noise))
    return rec / total if total > _FLAT else 0.0


def window_figures(samples: np.ndarray) -> dict[str, float]:
    """consciousness_unity and multi-state of a (ticks x units) window, as the engine defines them."""
    cov = covariance(samples)
    return {"consciousness_unity": synchrony(cov), "multi-state": spectral_spread(cov)}


def active_rate(rates: np.ndarray) -> float:
    """Mean rate of the units firing above half their maximum (0 when none does)."""
    active = rates[rates > 0.5]
    return float(active.sum()) / active.size if active.size else 0.0


def connectivity(samples: np.ndarray) -> float:
    """Functional connectivity of a (ticks x units) window: mean |Pearson correlation| over pairs of units."""
    return mean_abs_correlation(covariance(samples))


# --- Lyapunov exponents: Benettin's method -------------------------------------------------------------


def renormalise(v: np.ndarray) -> tuple[np.ndarray, float]:
    """(v / |v|, log |v|): one Benettin renormalisation of a tangent vector."""
    norm = float(np.sqrt(np.dot(v, v)))
    if not norm > 0.0 or not math.isfinite(norm):
        raise ValueError("tangent vector collapsed or overflowed")
    return v / norm, math.log(norm)


def largest_lyapunov(
    advance: Callable[[np.ndarray], np.ndarray],
    tangent: Callable[[np.ndarray, np.ndarray], np.ndarray],
    x0: np.ndarray,
    v0: np.ndarray,
    steps: int,
    discard: int = 0,
) -> float:
    """Largest Lyapunov exponent (per step) of the map `advance`, whose Jacobian-vector product at x is
    `tangent(x, v)`, along the orbit of x0: Benettin's method, renormalised every step, the first
    `discard` steps not averaged."""
    x = np.asarray(x0, dtype=np.float64)
    v, _ = renormalise(np.asarray(v0, dtype=np.float64))
    total = 0.0
    for i in range(discard + steps):
        v, log_growth = renormalise(tangent(x, v))
        x = advance(x)
        if i >= discard:
            total += log_growth
    return total / steps


# --- fractal dimension -------------------------------------------------------------------------------


def higuchi_fd(x: np.ndarray, kmax: int = 10) -> float:
    """Higuchi's fractal dimension of a scalar series (1 for smooth curves, 2 for white noise; 1.0 when flat)."""
    series = np.asarray(x, dtype=np.float64).ravel()
    n = series.size
    kmax = min(kmax, n // 4)
    if kmax < 2:
        return 1.0
    ks = np.arange(1, kmax + 1)
    lengths = np.empty(kmax)
    for j, k in enumerate(ks):
        steps = np.abs(series[k:] - series[:-k])  # steps[i] links samples i and i + k, on the curve of offset i % k
        offset = np.arange(k)
        per_offset = np.bincount(np.arange(steps.size) % k, weights=steps, minlength=k)
        segments = (n - 1 - offset) // k
        norm = (n - 1) / (segments * k)
        lengths[j] = (per_offset * norm / k).mean()
    if np.any(lengths <= _FLAT):
        return 1.0
    # L(k) ~ k^-D
    return -_slope(np.log(ks.astype(np.float64)), np.log(lengths))


def increment_sums(series: np.ndarray, kmax: int) -> np.ndarray:
    """sum_i |x[i+k] - x[i]| for k = 1..kmax: the running sums behind `higuchi_pooled`."""
    x = np.asarray(series, dtype=np.float64).ravel()
    return np.array([np.abs(x[k:] - x[:-k]).sum() for k in range(1, kmax + 1)])


def higuchi_pooled(sums: np.ndarray, n: int) -> float:
    """Higuchi's dimension from pooled k-increment sums of an n-sample series (every offset weighted by its
    pairs): curve length L(k) = mean|x[i+k] - x[i]| (n-1) / k^2 ~ k^-D, so D = 2 - slope of log mean|dx_k|
    against log k; 1.0 when the series is flat."""
    ks, weights = _slope_weights(sums.shape[0])
    mean_increment = sums / (n - ks)
    if not mean_increment.min() > _FLAT:
        return 1.0
    return 2.0 - float(np.dot(weights, np.log(mean_increment)))


@functools.cache
def _slope_weights(kmax: int) -> tuple[np.ndarray, np.ndarray]:
    """(k = 1..kmax, w) with w . y the least-squares slope of y against log k."""
    ks = np.arange(1, kmax + 1, dtype=np.float64)
    xc = np.log(ks) - np.log(ks).mean()
    return ks, xc / np.dot(xc, xc)


def _slope(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of y against x."""
    xc = x - x.mean()
    return float((xc * (y - y.mean())).sum() / (xc * xc).sum())
