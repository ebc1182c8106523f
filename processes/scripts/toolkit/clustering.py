"""Seeded k-means++ clustering of unit states, its silhouette, and short labels for the patterns it finds."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from processes.scripts.toolkit.result import unit_ranges


@dataclass(frozen=True)
class KMeansResult:
    centroids: np.ndarray  # (k, features)
    labels: np.ndarray  # (rows,)
    inertia: float  # sum of squared distances to the assigned centroid
    iterations: int


def _sq_dist(data: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances (rows x centroids) without a rows x centroids x features temporary."""
    sq = (data**2).sum(axis=1)[:, None] - 2.0 * data @ centroids.T + (centroids**2).sum(axis=1)[None, :]
    return np.maximum(sq, 0.0)


def kmeans_pp_init(data: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding: each new centre drawn with probability proportional to squared distance."""
    rows = data.shape[0]
    centres = [data[rng.integers(rows)]]
    closest = ((data - centres[0]) ** 2).sum(axis=1)
    for _ in range(1, k):
        total = closest.sum()
        pick = rng.integers(rows) if total <= 0 else rng.choice(rows, p=closest / total)
        centres.append(data[pick])
        closest = np.minimum(closest, ((data - data[pick]) ** 2).sum(axis=1))
    return np.array(centres)


def kmeans(data: np.ndarray, k: int, rng: np.random.Generator, iterations: int = 50, restarts: int = 1) -> KMeansResult:
    """Lloyd's k-means from k-means++ seeds, best of `restarts`; an emptied cluster takes the worst-fit row.

    k is lowered to the number of distinct rows, so repeated states never yield duplicate clusters.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    k = min(k, int(np.unique(data, axis=0).shape[0]))
    best = None
    for _ in range(restarts):
        centroids = kmeans_pp_init(data, k, rng)
        labels = np.full(data.shape[0], -1)
        used = 0
        for used in range(1, iterations + 1):
            dist = _sq_dist(data, centroids)
            new_labels = dist.argmin(axis=1)
            counts = np.bincount(new_labels, minlength=k)
            fit = dist[np.arange(data.shape[0]), new_labels]
            while (counts == 0).any():
                # Take the worst-fitting row from a cluster that can spare one.
                movable = np.where(counts[new_labels] > 1, fit, -1.0)
                worst = int(movable.argmax())
                counts[new_labels[worst]] -= 1
                new_labels[worst] = int(np.flatnonzero(counts == 0)[0])
                counts[new_labels[worst]] += 1
                fit[worst] = -1.0
            if np.array_equal(new_labels, labels):
                break
            labels = new_labels
            onehot = np.zeros((data.shape[0], k))
            onehot[np.arange(data.shape[0]), labels] = 1.0
            centroids = (onehot.T @ data) / counts[:, None]
        inertia = float(_sq_dist(data, centroids)[np.arange(data.shape[0]), labels].sum())
        if best is None or inertia < best.inertia:
            best = KMeansResult(centroids, labels, inertia, used)
    return best


def silhouette(data: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Mean silhouette coefficient; 0 for a single cluster, 0 for points alone in their cluster."""
    if k < 2:
        return 0.0
    dist = np.sqrt(np.maximum(_sq_dist(data, data), 0.0))
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    sums = np.stack([dist[:, labels == j].sum(axis=1) for j in range(k)], axis=1)  # (rows, k)
    own = labels
    rows = np.arange(data.shape[0])
    own_count = counts[own] - 1.0
    a = np.divide(sums[rows, own], own_count, out=np.zeros(data.shape[0]), where=own_count > 0)
    other = np.divide(sums, counts[None, :], out=np.full_like(sums, np.inf), where=counts[None, :] > 0)
    other[rows, own] = np.inf
    b = other.min(axis=1)
    denom = np.maximum(a, b)
    s = np.divide(b - a, denom, out=np.zeros_like(a), where=(denom > 0) & np.isfinite(b) & (own_count > 0))
    return float(s.mean())


def describe_pattern(centroid: np.ndarray, baseline: np.ndarray) -> str:
    """Short label: overall level plus the unit ranges standing out above/below the baseline."""
    diff = centroid - baseline
    threshold = max(0.05, float(diff.std()))
    high = np.flatnonzero(diff > threshold)
    low = np.flatnonzero(diff < -threshold)
    mean = float(centroid.mean())
    level = "bright" if mean > 0.6 else "dim" if mean < 0.4 else "mid"
    parts = []
    if high.size:
        parts.append(f"{unit_ranges(high, 2)} high")
    if low.size:
        parts.append(f"{unit_ranges(low, 2)} low")
    return f"{level}: " + ("; ".join(parts) if parts else "near baseline")
