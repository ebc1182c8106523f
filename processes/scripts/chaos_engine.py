"""Chaos engine: tunes a logistic (or tent) map so its orbit entropy meets a target, as a controlled entropy source."""

from __future__ import annotations


import numpy as np

from processes.scripts.toolkit.drawing import PALETTE, TEXT, canvas, font, heatmap, png_base64
from processes.scripts.toolkit.request import Emit, read_context, read_parameters
from processes.scripts.toolkit.result import clip, finite, impact, mood_from

# Parameter range scanned for each map: from periodic order to full chaos.
R_RANGE = {"logistic": (2.8, 4.0), "tent": (1.0, 1.9999)}
COARSE_STEPS = 241
FINE_STEPS = 41
SCAN_LENGTH = 1000  # orbit samples per scanned parameter; the chosen one is recomputed at full length


def map_step(kind: str, r: np.ndarray | float, x: np.ndarray | float) -> np.ndarray:
    """One iteration of the map: logistic r x (1 - x) or tent r min(x, 1 - x)."""
    if kind == "logistic":
        return r * x * (1.0 - x)
    if kind == "tent":
        return r * np.minimum(x, 1.0 - x)
    raise ValueError(f"unknown map {kind!r}")


def map_slope(kind: str, r: np.ndarray | float, x: np.ndarray) -> np.ndarray:
    """|f'(x)| of the map along the orbit."""
    if kind == "logistic":
        return np.abs(r * (1.0 - 2.0 * x))
    if kind == "tent":
        return np.broadcast_to(np.abs(np.asarray(r, dtype=np.float64)), np.shape(x)).astype(np.float64)
    raise ValueError(f"unknown map {kind!r}")


def orbit(kind: str, r: np.ndarray | float, x0: np.ndarray | float, length: int, burn_in: int = 0) -> np.ndarray:
    """Iterate the map from x0, drop burn_in iterations, return `length` samples (axis 0 = time).

    r and x0 may be arrays (broadcast together) to run many orbits at once.
    """
    r = np.asarray(r, dtype=np.float64)
    x = np.broadcast_to(np.asarray(x0, dtype=np.float64), np.broadcast_shapes(r.shape, np.shape(x0))).copy()
    for _ in range(burn_in):
        x = map_step(kind, r, x)
    out = np.empty((length,) + x.shape)
    for t in range(length):
        x = map_step(kind, r, x)
        out[t] = x
    return out


def lyapunov_exponent(kind: str, r: np.ndarray | float, samples: np.ndarray) -> np.ndarray | float:
    """Mean log|f'(x)| along the orbit samples (axis 0); ln 2 for the logistic map at r = 4."""
    slope = map_slope(kind, r, samples)
    # An orbit point exactly at the critical point has slope 0; the floor keeps the mean finite.
    logs = np.log(np.maximum(slope, 1e-300))
    result = logs.mean(axis=0)
    return float(result) if np.ndim(result) == 0 else result


def orbit_entropy(samples: np.ndarray, bins: int) -> np.ndarray | float:
    """Shannon entropy of the orbit histogram on [0, 1] (axis 0 = time), normalised by log(bins)."""
    samples = np.asarray(samples, dtype=np.float64)
    flat = samples.reshape(samples.shape[0], -1)
    idx = np.clip((flat * bins).astype(np.int64), 0, bins - 1)
    cols = flat.shape[1]
    counts = np.bincount((idx + bins * np.arange(cols)[None, :]).ravel(), minlength=bins * cols)
    p = counts.reshape(cols, bins) / flat.shape[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1) / np.log(bins)
    h = h.reshape(samples.shape[1:])
    return float(h) if h.ndim == 0 else h


def tune(kind: str, aim: float, x0: float, bins: int, burn_in: int) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """Scan the map parameter coarsely then finely; return (best r, coarse rs, coarse entropies, coarse orbits)."""
    lo, hi = R_RANGE[kind]
    rs = np.linspace(lo, hi, COARSE_STEPS)
    samples = orbit(kind, rs, x0, SCAN_LENGTH, burn_in)
    entropies = orbit_entropy(samples, bins)
    best = int(np.argmin(np.abs(entropies - aim)))
    half_step = (hi - lo) / (COARSE_STEPS - 1)
    fine = np.linspace(max(lo, rs[best] - half_step), min(hi, rs[best] + half_step), FINE_STEPS)
    fine_entropy = orbit_entropy(orbit(kind, fine, x0, SCAN_LENGTH, burn_in), bins)
    candidates = np.concatenate([fine, rs[best : best + 1]])
    errors = np.abs(np.concatenate([fine_entropy, entropies[best : best + 1]]) - aim)
    return float(candidates[int(np.argmin(errors))]), rs, entropies, samples


def run(request: dict, emit: Emit) -> dict:
    params = read_parameters(request, "chaos_engine")
    ctx = read_context(request, min_rows=1)
    rng = np.random.default_rng(request["seed"])
    kind = params["map"]
    target = params["target_entropy"]
    current = ctx.entropy
    aim = current + params["gain"] * (target - current)
    x0 = float(rng.uniform(0.05, 0.95))
    emit(f"scanning {COARSE_STEPS} {kind} parameters for orbit entropy {aim:.3f} (current {current:.3f}, target {target:.3f})")

    r, rs, scan_entropy, scan_orbits = tune(kind, aim, x0, params["bins"], params["burn_in"])
    samples = orbit(kind, r, x0, params["orbit_length"], params["burn_in"])
    entropy = orbit_entropy(samples, params["bins"])
    lyap = lyapunov_exponent(kind, r, samples)
    emit(f"chose r={r:.4f}: orbit entropy {entropy:.3f}, Lyapunov exponent {lyap:.3f}")

    # the push on the system's entropy is what the orbit delivers: its own entropy against the system's now
    # (a map that cannot reach the aim pushes only as far as it got; a target already met pushes not at all)
    drive = clip(entropy - current, -1.0, 1.0)
    metrics = {
        "r": finite(r),
        "lyapunov": finite(lyap),
        "orbit_entropy": finite(entropy),
        "aim_entropy": finite(aim),
        "target_entropy": finite(target),
        "current_entropy": finite(current),
        "entropy_error": finite(abs(entropy - aim)),
        "entropy_drive": finite(drive),
        "x0": finite(x0),
    }
    regime = "chaotic" if lyap > 0.01 else "periodic" if lyap < -0.01 else "marginal"
    direction = "raising" if drive > 0.005 else "lowering" if drive < -0.005 else "holding"
    analysis = (
        f"Tuned the {kind} map to r={r:.4f} ({regime}, Lyapunov {lyap:.3f}): orbit entropy {entropy:.2f} "
        f"against aim {aim:.2f}, {direction} system entropy from {current:.2f} toward {target:.2f}."
    )
    # Positive when the orbit sits closer to the target than the system currently does.
    scup_change = 2.0 * (abs(current - target) - abs(entropy - target))
    return {
        "analysis": analysis,
        "metrics": metrics,
        "visualization": png_base64(_draw(kind, rs, scan_entropy, scan_orbits, r, aim)),
        "consciousness_impact": impact(scup_change, mood_from(scup_change, 0.25), entropy_drive=drive),
        "orbit": [finite(v) for v in samples[-64:]],
    }


def _draw(kind: str, rs: np.ndarray, entropies: np.ndarray, samples: np.ndarray, chosen: float, aim: float):
    """Bifurcation-style density of orbit values against r, with the entropy curve, aim and chosen r."""
    size = 256
    tail = samples[-200:]  # (time, r)
    rows = np.clip((tail * size).astype(np.int64), 0, size - 1)
    density = np.zeros((size, rs.size))
    np.add.at(density, (size - 1 - rows, np.broadcast_to(np.arange(rs.size), rows.shape)), 1.0)
    image = heatmap(np.log1p(density), (size, size), 0.0, float(np.log1p(density).max()), "inferno")
    img, draw = canvas((size, size + 18))
    img.paste(image, (0, 18))
    xs = (rs - rs[0]) / (rs[-1] - rs[0]) * (size - 1)
    ys = 18 + (1.0 - entropies) * (size - 1)
    draw.line(list(zip(xs.tolist(), ys.tolist())), fill=PALETTE[1], width=1)
    aim_y = 18 + (1.0 - aim) * (size - 1)
    for x in range(0, size, 8):
        draw.line([(x, aim_y), (x + 3, aim_y)], fill=PALETTE[3])
    cx = (chosen - rs[0]) / (rs[-1] - rs[0]) * (size - 1)
    draw.line([(cx, 18), (cx, size + 17)], fill=PALETTE[2], width=1)
    draw.text((2, 2), f"{kind} orbit vs r, chosen r={chosen:.3f}", fill=TEXT, font=font())
    return img

