"""Consciousness processor: the engine's unity and multi-state at the end of sliding windows, with their trend,
and on each window the coherence of the two halves of the units and the share of the dominant eigenmode.

consciousness_unity and multi-state are the engine's own per-tick figures (Golomb synchrony and the spectral
spread over the engine's unity window), read from the context's series: a script may not import the engine, and
a second definition would drift from the first. What the script computes itself has names of its own.
"""

from __future__ import annotations


import numpy as np

from processes.scripts.toolkit.drawing import (
    AXIS,
    PALETTE,
    TEXT,
    canvas,
    font,
    legend,
    plot_lines,
    png_base64,
)
from processes.scripts.toolkit.request import Context, Emit, ParameterError, read_context, read_parameters
from processes.scripts.toolkit.result import finite, impact, mood_from

MIN_TICKS = 8


def spectrum(window: np.ndarray) -> np.ndarray:
    """Eigenvalues of the unit covariance over a window, largest first, clipped at 0."""
    cov = np.cov(window, rowvar=False)
    return np.clip(np.linalg.eigvalsh(cov)[::-1], 0.0, None)


def mode_figures(eigenvalues: np.ndarray) -> tuple[float, float]:
    """(share of the largest eigenvalue, participation ratio (sum l)^2 / sum l^2) of a spectrum; 0 when flat."""
    total = eigenvalues.sum()
    if total <= 1e-15:
        return 0.0, 0.0
    return float(eigenvalues[0] / total), float(total**2 / (eigenvalues**2).sum())


def engine_series(ctx: Context, name: str) -> np.ndarray:
    """The engine's per-tick figure `name`, one value per activity row; ValueError if the context lacks it."""
    values = ctx.series.get(name)
    if values is None:
        raise ValueError(f"context.series.{name} is missing: this script reports the engine's per-tick {name}")
    if values.size != ctx.ticks:
        raise ValueError(f"context.series.{name} has {values.size} values for {ctx.ticks} rows of activity")
    return values


def welch_coherence(a: np.ndarray, b: np.ndarray, segment: int) -> float:
    """Mean magnitude-squared coherence of two signals over non-DC frequencies.

    Welch estimate: Hann-tapered, mean-removed segments with 50% overlap, cross and auto spectra
    averaged across segments before forming |Sab|^2 / (Saa Sbb).
    """
    hop = max(1, segment // 2)
    starts = np.arange(0, a.size - segment + 1, hop)
    if starts.size < 2:
        raise ValueError("coherence needs at least two segments")
    idx = starts[:, None] + np.arange(segment)[None, :]
    taper = np.hanning(segment + 2)[1:-1]  # no zero end points, so short segments keep their edges
    sa = a[idx] - a[idx].mean(axis=1, keepdims=True)
    sb = b[idx] - b[idx].mean(axis=1, keepdims=True)
    fa = np.fft.rfft(sa * taper, axis=1)[:, 1:]
    fb = np.fft.rfft(sb * taper, axis=1)[:, 1:]
    saa = (np.abs(fa) ** 2).mean(axis=0)
    sbb = (np.abs(fb) ** 2).mean(axis=0)
    sab = (fa * np.conj(fb)).mean(axis=0)
    denom = saa * sbb
    scale = max(float(denom.max(initial=0.0)), 1e-300)
    valid = denom > 1e-12 * scale
    if not valid.any():
        return 0.0
    return float(np.clip((np.abs(sab[valid]) ** 2 / denom[valid]).mean(), 0.0, 1.0))


def run(request: dict, emit: Emit) -> dict:
    params = read_parameters(request, "consciousness_processor")
    if params["segment"] * 3 > params["window"] * 2:
        raise ParameterError("segment", f"must be at most 2/3 of window ({params['window'] * 2 // 3}), got {params['segment']}")
    ctx = read_context(request, min_rows=MIN_TICKS, min_units=4)
    activity = ctx.activity
    ticks, n = activity.shape
    window = min(params["window"], ticks)
    segment = min(params["segment"], window * 2 // 3)
    step = params["step"]
    # Windows are anchored to the newest tick so the last value describes "now".
    starts = np.arange(ticks - window, -1, -step)[::-1]
    emit(f"analysing {starts.size} windows of {window} ticks over {n} units")

    unity_ticks = engine_series(ctx, "consciousness_unity")
    multi_ticks = engine_series(ctx, "multi_state")
    half = n // 2
    left, right = activity[:, :half].mean(axis=1), activity[:, half:].mean(axis=1)
    dominant, pr, coherence = [], [], []
    last_spectrum = np.zeros(n)
    for s in starts:
        eig = spectrum(activity[s : s + window])
        share, ratio = mode_figures(eig)
        dominant.append(share)
        pr.append(ratio)
        coherence.append(welch_coherence(left[s : s + window], right[s : s + window], segment))
        last_spectrum = eig
    ends = starts + window - 1  # the row of each window's newest tick
    unity_a, multi_a = unity_ticks[ends], multi_ticks[ends]
    dominant_a, coh_a = np.array(dominant), np.array(coherence)
    end_ticks = ctx.tick_number - (ticks - 1 - ends)
    emit(f"unity {unity_a[-1]:.2f}, multi-state {multi_a[-1]:.2f}, coherence {coh_a[-1]:.2f}")

    if unity_a.size >= 2:
        slope = float(np.polyfit(end_ticks.astype(np.float64), unity_a, 1)[0])
    else:
        slope = 0.0
    change = float(unity_a[-1] - unity_a[0])
    metrics = {
        "unity": finite(unity_a[-1]),
        "unity_mean": finite(unity_a.mean()),
        "unity_change": finite(change),
        "unity_trend_per_100_ticks": finite(slope * 100.0),
        "multi_state": finite(multi_a[-1]),
        "multi_state_mean": finite(multi_a.mean()),
        "dominant_mode_share": finite(dominant_a[-1]),
        "participation_ratio": finite(pr[-1]),
        "coherence": finite(coh_a[-1]),
        "coherence_mean": finite(coh_a.mean()),
        "windows": float(starts.size),
    }

    direction = "rising" if change > 0.05 else "falling" if change < -0.05 else "steady"
    analysis = (
        f"Unity {unity_a[-1]:.2f} ({direction} from {unity_a[0]:.2f}) with multi-state {multi_a[-1]:.2f}; "
        f"the dominant mode of the last {window} ticks carries {dominant_a[-1]:.0%} of the variance "
        f"(participation ratio {pr[-1]:.1f} of {n} units); coherence between units 0-{half - 1} and "
        f"{half}-{n - 1} averages {coh_a.mean():.2f} over {starts.size} windows."
    )

    scup_change = 4.0 * (coh_a.mean() - 0.5) + 6.0 * change
    return {
        "analysis": analysis,
        "metrics": metrics,
        "visualization": png_base64(_draw(end_ticks, unity_a, multi_a, coh_a, last_spectrum)),
        "consciousness_impact": impact(scup_change, mood_from(scup_change)),
        "timeline": {
            "tick": [int(t) for t in end_ticks],
            "unity": [finite(v) for v in unity_a],
            "multi_state": [finite(v) for v in multi_a],
            "coherence": [finite(v) for v in coh_a],
            "dominant_mode_share": [finite(v) for v in dominant_a],
        },
    }


def _draw(ticks: np.ndarray, unity: np.ndarray, multi: np.ndarray, coherence: np.ndarray, eig: np.ndarray):
    """Curves of unity, multi-state and coherence over time, and the newest window's eigen-spectrum."""
    img, draw = canvas((320, 256))
    colours = {"unity": PALETTE[0], "multi-state": PALETTE[1], "coherence": PALETTE[2]}
    legend(draw, (8, 4), list(colours.items()))
    plot_lines(draw, (8, 22, 311, 176),
               [(unity, colours["unity"]), (multi, colours["multi-state"]), (coherence, colours["coherence"])],
               (0.0, 1.0), x_values=ticks)
    f = font()
    draw.text((8, 178), f"tick {int(ticks[0])}", fill=AXIS, font=f)
    right = f"tick {int(ticks[-1])}"
    draw.text((311 - draw.textlength(right, font=f), 178), right, fill=AXIS, font=f)
    # Eigen-spectrum of the last window: the share of each mode, largest first.
    shares = eig / eig.sum() if eig.sum() > 0 else eig
    bars = shares[:24]
    box = (8, 196, 311, 250)
    draw.rectangle(box, outline=AXIS)
    draw.text((12, 197), "eigenmode shares, newest window", fill=TEXT, font=f)
    width = (box[2] - box[0] - 4) / max(1, bars.size)
    for i, share in enumerate(bars):
        x0 = box[0] + 2 + i * width
        h = share * (box[3] - box[1] - 16)
        draw.rectangle([x0 + 1, box[3] - 2 - h, x0 + width - 1, box[3] - 2], fill=PALETTE[4])
    return img

