"""Memory consolidator: compresses recent tick states into a few long-term patterns with seeded k-means."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from ._common import (
    PALETTE,
    TEXT,
    Emit,
    canvas,
    clip,
    finite,
    font,
    heatmap,
    impact,
    png_base64,
    read_context,
    unit_ranges,
    validate_parameters,
)

DESCRIPTION = "Consolidates recent per-tick activity into long-term patterns with seeded k-means++ clustering and reports how much of the variation they explain."

PARAMETERS = {
    "k": {"type": "integer", "default": 4, "minimum": 1, "maximum": 16,
          "description": "Number of patterns (clusters) to form."},
    "iterations": {"type": "integer", "default": 50, "minimum": 1, "maximum": 500,
                   "description": "Maximum Lloyd iterations per restart."},
    "restarts": {"type": "integer", "default": 4, "minimum": 1, "maximum": 16,
                 "description": "Independent k-means++ initialisations; the lowest inertia wins."},
    "include_series": {"type": "boolean", "default": False,
                       "description": "Also cluster on the global series (scup/100, entropy, ...) aligned to the activity rows."},
}

# Series appended as extra features when include_series is set; scup lives on 0..100.
SERIES_SCALE = {"scup": 0.01, "entropy": 1.0, "neural_activity": 1.0, "consciousness_unity": 1.0, "memory_pressure": 1.0}


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


def _features(ctx, include_series: bool) -> np.ndarray:
    if not include_series:
        return ctx.activity
    ticks = ctx.ticks
    extra = []
    for name, scale in SERIES_SCALE.items():
        if name not in ctx.series:
            continue
        values = ctx.series[name]
        if values.size < ticks:
            raise ValueError(f"context.series.{name} has {values.size} values, include_series needs {ticks} (one per activity row)")
        extra.append(values[-ticks:] * scale)
    if not extra:
        raise ValueError("include_series is set but context.series has none of " + ", ".join(SERIES_SCALE))
    return np.column_stack([ctx.activity] + extra)


def run(request: dict, emit: Emit) -> dict:
    params = validate_parameters(PARAMETERS, request.get("parameters", {}) if isinstance(request, dict) else {})
    ctx = read_context(request, min_rows=2)
    rng = np.random.default_rng(request["seed"])
    data = _features(ctx, params["include_series"])
    ticks, units = ctx.ticks, ctx.units
    k = params["k"]
    emit(f"clustering {ticks} ticks of {data.shape[1]} features into {k} patterns")

    fit = kmeans(data, k, rng, params["iterations"], params["restarts"])
    if fit.centroids.shape[0] < k:
        k = fit.centroids.shape[0]
        emit(f"only {k} distinct states, forming {k} patterns")
    total_ss = float(((data - data.mean(axis=0)) ** 2).sum())
    explained = 1.0 - fit.inertia / total_ss if total_ss > 1e-12 else 1.0
    explained = clip(explained, 0.0, 1.0)
    sil = silhouette(data, fit.labels, k)
    emit(f"converged after {fit.iterations} iterations, explained fraction {explained:.3f}")

    counts = np.bincount(fit.labels, minlength=k)
    order = sorted(range(k), key=lambda j: (-counts[j], j))
    baseline = ctx.activity.mean(axis=0)
    first_tick = max(0, ctx.tick_number - ticks + 1)
    patterns = []
    for j in order:
        centroid = fit.centroids[j, :units]
        patterns.append({
            "centroid": [finite(v) for v in centroid],
            "weight": finite(counts[j] / ticks),
            "label": describe_pattern(centroid, baseline),
            "support": int(counts[j]),
        })
    emit(f"formed {len(patterns)} patterns; largest holds {patterns[0]['support']} ticks")

    metrics = {
        "inertia": finite(fit.inertia),
        "explained_fraction": finite(explained),
        "patterns": float(k),
        "silhouette": finite(sil),
        "rms_distance": finite(np.sqrt(fit.inertia / ticks)),
        "largest_weight": finite(patterns[0]["weight"]),
        "iterations": float(fit.iterations),
    }
    quality = "tightly" if explained >= 0.6 else "loosely" if explained >= 0.3 else "poorly"
    analysis = (
        f"Consolidated ticks {first_tick}-{ctx.tick_number} into {k} pattern{'s' if k != 1 else ''} that {quality} "
        f"explain{'s' if k == 1 else ''} {explained:.0%} of the variation; the dominant one ({patterns[0]['label']}) covers "
        f"{patterns[0]['weight']:.0%} of ticks."
    )
    relief = clip(0.2 + 0.4 * explained, 0.2, 0.6)
    mood = "positive" if explained >= 0.6 else "negative" if explained < 0.3 else "neutral"
    scup_change = 3.0 * (explained - 0.5)
    return {
        "analysis": analysis,
        "metrics": metrics,
        "visualization": png_base64(_draw(fit.centroids[order, :units], counts[order] / ticks)),
        "consciousness_impact": impact(scup_change, mood, memory_relief=relief),
        "patterns": patterns,
        "source_ticks": [first_tick, ctx.tick_number],
    }


def _draw(centroids: np.ndarray, weights: np.ndarray):
    """One heat row per pattern (unit activity 0..1) with a bar for its share of ticks."""
    k, units = centroids.shape
    width, height, top, bar = 256, 256, 18, 40
    row_h = (height - top) // k
    img, draw = canvas((width + bar, top + row_h * k))
    lo, hi = float(centroids.min()), float(centroids.max())
    # Stretch to the centroids' own range (at least 0.1 wide) so differences between patterns show.
    mid = (lo + hi) / 2
    lo, hi = min(lo, mid - 0.05), max(hi, mid + 0.05)
    img.paste(heatmap(centroids, (width, row_h * k), lo, hi, "viridis"), (0, top))
    for i, w in enumerate(weights):
        y0 = top + i * row_h
        draw.line([(0, y0), (width + bar, y0)], fill=(16, 18, 28))
        draw.rectangle([width + 4, y0 + 3, width + 4 + w * (bar - 8), y0 + row_h - 3], fill=PALETTE[i % len(PALETTE)])
    draw.text((2, 2), f"{k} consolidated patterns x {units} units, share of ticks", fill=TEXT, font=font())
    return img


if __name__ == "__main__":
    from ._common import main_entry

    sys.exit(main_entry(run))
