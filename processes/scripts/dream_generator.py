"""Dream generator: recombines long-term patterns into a drifting sequence of unit states and paints it."""

from __future__ import annotations


import numpy as np
from PIL import Image

from processes.scripts.toolkit.clustering import describe_pattern, kmeans
from processes.scripts.toolkit.drawing import png_base64
from processes.scripts.toolkit.request import Emit, Pattern, read_context, read_parameters, read_patterns
from processes.scripts.toolkit.result import clip, finite, impact, mood_from, unit_ranges

FRAMES_PER_KEY = 4
VALENCE_GAIN = 8.0  # valence tanh(8 (recombined - waking rate)): 0.1 brighter than waking is +0.66
IMAGE_SIZE = 256


def fallback_patterns(activity: np.ndarray, k: int, rng: np.random.Generator) -> list[Pattern]:
    """Patterns from k-means on recent activity, for when long-term memory is still empty."""
    fit = kmeans(activity, k, rng, iterations=30, restarts=2)
    k = fit.centroids.shape[0]
    counts = np.bincount(fit.labels, minlength=k)
    baseline = activity.mean(axis=0)
    return [
        Pattern(centroid=fit.centroids[j], weight=float(counts[j] / activity.shape[0]),
                label=describe_pattern(fit.centroids[j], baseline))
        for j in sorted(range(k), key=lambda j: (-counts[j], j))
    ]


def _smooth_noise(rng: np.random.Generator, n: int, width: int = 3) -> np.ndarray:
    """Gaussian noise blurred around the unit ring, so perturbations come in patches, not speckle."""
    raw = rng.normal(0.0, 1.0, n)
    kernel = np.ones(2 * width + 1) / (2 * width + 1)
    padded = np.concatenate([raw[-width:], raw, raw[:width]])
    blurred = np.convolve(padded, kernel, mode="valid")
    return blurred / max(float(blurred.std()), 1e-12)


def dream_sequence(centroids: np.ndarray, weights: np.ndarray, length: int, novelty: float,
                   rng: np.random.Generator) -> tuple[np.ndarray, list[int], np.ndarray]:
    """(frames x units sequence in 0..1, keyframe pattern indices, share of each pattern in the keyframes).

    Keyframes walk between patterns (likelier to jump far when novelty is high), each recombined
    with a partner pattern over a contiguous block of units plus patchy noise; frames ease between
    keyframes and carry a slow AR(1) drift.
    """
    m, n = centroids.shape
    p_base = weights / weights.sum() if weights.sum() > 0 else np.full(m, 1.0 / m)
    dist = np.sqrt(((centroids[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2))
    scale = float(dist[dist > 0].mean()) if (dist > 0).any() else 1.0
    keys = max(2, -(-length // FRAMES_PER_KEY) + 1)
    walk = [int(rng.choice(m, p=p_base))]
    for _ in range(keys - 1):
        affinity = p_base * np.exp(-(1.0 - novelty) * 3.0 * dist[walk[-1]] / scale)
        if m > 1:
            affinity[walk[-1]] *= 0.25  # a dream rarely dwells on one memory
        walk.append(int(rng.choice(m, p=affinity / affinity.sum())))

    keyframes = np.empty((keys, n))
    shares = np.zeros(m)  # of the keyframes' unit states, the fraction each pattern supplied
    for i, idx in enumerate(walk):
        partner = int(rng.choice(m, p=p_base))
        block = max(1, int(round(n * novelty * rng.uniform(0.3, 1.0))))
        start = int(rng.integers(n))
        mask = np.zeros(n, dtype=bool)
        mask[(start + np.arange(block)) % n] = True
        child = centroids[idx].copy()
        child[mask] = centroids[partner][mask]
        shares[idx] += (n - block) / (n * keys)
        shares[partner] += block / (n * keys)
        keyframes[i] = child + 0.12 * novelty * _smooth_noise(rng, n)

    position = np.linspace(0.0, keys - 1.0, length)
    lo = np.minimum(np.floor(position).astype(int), keys - 2)
    frac = position - lo
    ease = (1.0 - np.cos(np.pi * frac)) / 2.0
    frames = keyframes[lo] * (1.0 - ease)[:, None] + keyframes[lo + 1] * ease[:, None]
    drift = np.zeros(n)
    for t in range(length):
        drift = 0.7 * drift + rng.normal(0.0, 0.04 * novelty, n)
        frames[t] += drift
    return np.clip(frames, 0.0, 1.0), walk, shares


def recombined_valence(centroids: np.ndarray, shares: np.ndarray, waking: float) -> tuple[float, float]:
    """(valence, level recombined): the mean rate of the patterns in the shares the dream recombined them in,
    against the waking mean rate; a dream of memories brighter than waking is pleasant, darker ones uneasy."""
    level = float(shares @ centroids.mean(axis=1))
    return float(np.tanh(VALENCE_GAIN * (level - waking))), level


def dream_features(seq: np.ndarray, centroids: np.ndarray, labels: list[str]) -> dict:
    """Numbers the narrative is drawn from."""
    length, n = seq.shape
    levels = seq.mean(axis=1)
    steps = np.abs(np.diff(seq, axis=0)).mean(axis=1) if length > 1 else np.zeros(1)
    shift_cut = max(float(steps.mean() + 1.5 * steps.std()), 0.03)
    shifts = int((steps > shift_cut).sum())
    nearest = ((seq[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2)
    nearest_idx = nearest.argmin(axis=1)
    stray = float(np.sqrt(nearest.min(axis=1) / n).mean())
    span = max(1, n // 8)
    unit_mean = seq.mean(axis=0)
    ring = np.concatenate([unit_mean, unit_mean[: span - 1]])
    window_sums = np.convolve(ring, np.ones(span), mode="valid")[:n]
    peak_start = int(window_sums.argmax())
    quarter = max(1, length // 4)
    rise = float(levels[-quarter:].mean() - levels[:quarter].mean())
    turbulence = float(steps.mean())
    return {
        "start": labels[int(nearest_idx[0])],
        "end": labels[int(nearest_idx[-1])],
        "peak_units": [(peak_start + i) % n for i in range(span)],
        "rise": rise,
        "turbulence": turbulence,
        "shifts": shifts,
        "stray": stray,
        "brightness": float(levels.mean()),
        "visited": int(np.unique(nearest_idx).size),
    }


def narrate(length: int, f: dict) -> str:
    """One sentence from the dream's features."""
    trend = "brightening" if f["rise"] > 0.03 else "darkening" if f["rise"] < -0.03 else "holding its glow"
    path = f"drifts from '{f['start']}' to '{f['end']}'" if f["start"] != f["end"] else f"circles around '{f['start']}'"
    shifts = "no sudden shifts" if f["shifts"] == 0 else f"{f['shifts']} sudden shift{'s' if f['shifts'] != 1 else ''}"
    tone = "a warm" if f["valence"] > 0.2 else "an uneasy" if f["valence"] < -0.2 else "a quiet"
    return (f"A {length}-frame dream {path}, {trend}, burning brightest in {unit_ranges(f['peak_units'])} "
            f"with {shifts}, leaving {tone} afterglow.")


def run(request: dict, emit: Emit) -> dict:
    params = read_parameters(request, "dream_generator")
    ctx = read_context(request, min_rows=1)
    patterns = read_patterns(request, ctx.units)
    rng = np.random.default_rng(request["seed"])
    if patterns:
        source = "long-term memory"
    else:
        source = "recent activity"
        patterns = fallback_patterns(ctx.activity, params["fallback_k"], rng)
    emit(f"dreaming from {len(patterns)} pattern{'s' if len(patterns) != 1 else ''} of {source}")

    centroids = np.array([p.centroid for p in patterns])
    weights = np.array([p.weight for p in patterns])
    seq, walk, shares = dream_sequence(centroids, weights, params["length"], params["novelty"], rng)
    labels = [p.label for p in patterns]
    features = dream_features(seq, centroids, labels)
    waking = float(ctx.activity.mean())
    features["valence"], recombined = recombined_valence(centroids, shares, waking)
    emit(f"woven {seq.shape[0]} frames through {len(walk)} keyframes; valence {features['valence']:.2f}")

    narrative = narrate(params["length"], features)
    metrics = {
        "valence": finite(features["valence"]),
        "brightness": finite(features["brightness"]),
        "rise": finite(features["rise"]),
        "turbulence": finite(features["turbulence"]),
        "shifts": float(features["shifts"]),
        "stray": finite(features["stray"]),
        "patterns_used": float(len(patterns)),
        "patterns_visited": float(features["visited"]),
        "recombined_level": finite(recombined),
        "waking_level": finite(waking),
    }
    analysis = (
        f"Dreamt {seq.shape[0]} frames from {len(patterns)} pattern{'s' if len(patterns) != 1 else ''} of {source}, "
        f"visiting {features['visited']}; "
        f"valence {features['valence']:+.2f}, brightness {features['brightness']:.2f}, {features['shifts']} sudden shifts."
    )
    return {
        "analysis": analysis,
        "metrics": metrics,
        "visualization": png_base64(_draw(seq, features["valence"])),
        "consciousness_impact": impact(2.5 * features["valence"], mood_from(features["valence"], 0.2)),
        "dream": {
            "sequence": [[finite(v) for v in row] for row in seq],
            "narrative": narrative,
            "keyframes": [labels[i] for i in walk],
        },
    }


def _draw(seq: np.ndarray, valence: float) -> Image.Image:
    """Polar field: angle walks the unit ring, radius walks time outward; hue from level and valence,
    with a ripple at the sequence's dominant spatial frequency."""
    length, n = seq.shape
    axis = np.linspace(-1.0, 1.0, IMAGE_SIZE)
    x, y = np.meshgrid(axis, axis)
    radius = np.clip(np.sqrt(x**2 + y**2) / np.sqrt(2.0), 0.0, 1.0)
    angle = (np.arctan2(y, x) / (2 * np.pi)) % 1.0
    t = radius * (length - 1)
    u = angle * n
    t0 = np.minimum(np.floor(t).astype(int), max(length - 2, 0))
    t1 = np.minimum(t0 + 1, length - 1)
    ft = t - t0
    u0 = np.floor(u).astype(int) % n
    u1 = (u0 + 1) % n
    fu = u - np.floor(u)
    value = ((seq[t0, u0] * (1 - fu) + seq[t0, u1] * fu) * (1 - ft)
             + (seq[t1, u0] * (1 - fu) + seq[t1, u1] * fu) * ft)

    spectrum = np.fft.rfft(seq.mean(axis=0) - seq.mean())
    k = int(np.abs(spectrum[1:]).argmax()) + 1 if spectrum.size > 1 else 1
    phase = float(np.angle(spectrum[k])) if spectrum.size > 1 else 0.0
    ripple = 0.5 + 0.5 * np.sin(2 * np.pi * (k * angle + 3.0 * radius) + phase)

    lo, hi = float(seq.min()), float(seq.max())
    level = (value - lo) / (hi - lo) if hi > lo else np.full_like(value, 0.5)
    hue_base = 0.62 - 0.55 * (clip(valence, -1.0, 1.0) + 1.0) / 2.0  # cool blue when uneasy, warm when bright
    hue = (hue_base + 0.35 * level + 0.08 * ripple) % 1.0
    sat = 0.45 + 0.5 * ripple * (0.5 + 0.5 * level)
    val = (0.15 + 0.85 * level**0.8) * (1.0 - 0.35 * radius**3)
    channels = [Image.fromarray(np.round(np.clip(c, 0.0, 1.0) * 255).astype(np.uint8)) for c in (hue, sat, val)]
    return Image.merge("HSV", channels).convert("RGB")

