"""Pure figures computed from arrays: entropy, correlation spectrum, Lyapunov exponent, fractal dimension."""

from __future__ import annotations

import math

import numpy as np

_FLAT = 1e-12  # below this a variance or a distance counts as zero


def shannon_entropy_normalized(values: np.ndarray, bins: int) -> float:
    """Shannon entropy of the histogram of `values` over `bins` equal bins of [0, 1], divided by log(bins)."""
    if bins < 2:
        raise ValueError("bins must be at least 2")
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        return 0.0
    # bincount over clipped indices: same as np.histogram on [0, 1] (last bin closed) and much cheaper
    idx = np.minimum((np.clip(x, 0.0, 1.0) * bins).astype(np.intp), bins - 1)
    counts = np.bincount(idx, minlength=bins)
    p = counts[counts > 0] / x.size
    return float(-(p * np.log(p)).sum() / math.log(bins))


def correlation_matrix(samples: np.ndarray) -> np.ndarray:
    """Pearson correlation of the columns of `samples` (time x units); a flat unit correlates 0 with others."""
    x = np.asarray(samples, dtype=np.float64)
    centred = x - x.mean(axis=0)
    std = np.sqrt((centred * centred).mean(axis=0))
    live = std > _FLAT
    z = np.where(live, centred / np.where(live, std, 1.0), 0.0)
    corr = (z.T @ z) / x.shape[0]
    np.fill_diagonal(corr, 1.0)
    return np.clip(corr, -1.0, 1.0)


def mean_abs_offdiagonal(corr: np.ndarray) -> float:
    """Mean |correlation| over distinct pairs of units."""
    n = corr.shape[0]
    if n < 2:
        return 0.0
    return float((np.abs(corr).sum() - np.trace(np.abs(corr))) / (n * (n - 1)))


def spectrum_figures(corr: np.ndarray) -> tuple[float, float]:
    """(largest eigenvalue / N, participation ratio (sum l)^2 / (N sum l^2)) of a correlation matrix, both in 0..1."""
    n = corr.shape[0]
    eig = np.clip(np.linalg.eigvalsh(corr), 0.0, None)
    total = float(eig.sum())
    squares = float((eig * eig).sum())
    if total <= _FLAT or squares <= _FLAT:
        return 0.0, 0.0
    return float(min(eig[-1] / total, 1.0)), float(min(total * total / (n * squares), 1.0))


def lyapunov_rosenstein(
    x: np.ndarray, emb_dim: int = 4, lag: int = 1, min_tsep: int = 10, traj_len: int = 8
) -> float:
    """Rosenstein's largest Lyapunov exponent of a scalar series, per sample step (0.0 when undefined)."""
    series = np.asarray(x, dtype=np.float64).ravel()
    n = series.size - (emb_dim - 1) * lag  # embedded points
    usable = n - traj_len  # points whose trajectory can be followed traj_len steps
    if emb_dim < 1 or lag < 1 or traj_len < 2 or usable < 2 * min_tsep + 2:
        return 0.0
    orbit = np.stack([series[i * lag : i * lag + n] for i in range(emb_dim)], axis=1)
    head = orbit[:usable]
    sq = (head * head).sum(axis=1)
    # squared distances, built in place: one large array instead of several temporaries
    dist = head @ head.T
    dist *= -2.0
    dist += sq[:, None]
    dist += sq[None, :]
    # temporal neighbours share their dynamics, not the attractor's geometry: exclude the band |i - j| <= min_tsep
    flat = dist.reshape(-1)
    for k in range(-min(min_tsep, usable - 1), min(min_tsep, usable - 1) + 1):
        start = k if k >= 0 else -k * usable
        stop = (usable - k) * usable if k >= 0 else usable * usable
        flat[start:stop:usable + 1] = np.inf
    i = np.arange(usable)
    neighbour = np.argmin(dist, axis=1)
    steps = np.arange(traj_len)
    gap = orbit[i[:, None] + steps] - orbit[neighbour[:, None] + steps]
    divergence = np.sqrt((gap * gap).sum(axis=2))  # (usable, traj_len)
    positive = divergence > _FLAT
    counts = positive.sum(axis=0)
    if np.any(counts == 0):
        return 0.0
    mean_log = np.where(positive, np.log(np.where(positive, divergence, 1.0)), 0.0).sum(axis=0) / counts
    return _slope(steps.astype(np.float64), mean_log)


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


def _slope(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of y against x."""
    xc = x - x.mean()
    return float((xc * (y - y.mean())).sum() / (xc * xc).sum())
