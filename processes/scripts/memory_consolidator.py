"""Memory consolidator: compresses recent tick states into a few long-term patterns with seeded k-means."""

from __future__ import annotations


import numpy as np

from processes.scripts.toolkit.clustering import describe_pattern, kmeans, silhouette
from processes.scripts.toolkit.drawing import PALETTE, TEXT, canvas, font, heatmap, png_base64
from processes.scripts.toolkit.request import Emit, read_context, read_parameters
from processes.scripts.toolkit.result import RECORDS_KEY, clip, finite, impact

# Series appended as extra features when include_series is set; scup lives on 0..100.
SERIES_SCALE = {"scup": 0.01, "entropy": 1.0, "neural_activity": 1.0, "consciousness_unity": 1.0, "memory_pressure": 1.0}


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
    params = read_parameters(request, "memory_consolidator")
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
        # the spec's records: each pattern becomes a long-term consolidation row
        RECORDS_KEY: {"consolidations": [
            {**pattern, "source_tick_start": first_tick, "source_tick_end": ctx.tick_number} for pattern in patterns
        ]},
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

