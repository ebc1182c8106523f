"""Building a script's result: plain finite numbers, unit-range labels, the consciousness impact, records."""

from __future__ import annotations

import math
from collections.abc import Sequence

from processes.scripts.specs import RECORDS_KEY

# The engine's mood influences (consciousness.engine.MOOD_INFLUENCES, asserted equal by the tests),
# kept here so that a script's impact() fails with a clear error in the script.
MOOD_INFLUENCES = ("positive", "negative", "neutral")

__all__ = ["MOOD_INFLUENCES", "RECORDS_KEY", "clip", "finite", "impact", "mood_from", "unit_ranges"]


def finite(value: float) -> float:
    """A plain Python float; a non-finite value is a bug in the script, not in the request."""
    out = float(value)
    if not math.isfinite(out):
        raise ArithmeticError(f"non-finite result {out!r}")
    return out


def clip(value: float, low: float, high: float) -> float:
    return float(min(max(float(value), low), high))


def mood_from(score: float, dead_zone: float = 0.5) -> str:
    """positive/negative outside +-dead_zone, else neutral."""
    positive, negative, neutral = MOOD_INFLUENCES
    if score > dead_zone:
        return positive
    if score < -dead_zone:
        return negative
    return neutral


def unit_ranges(indices: Sequence[int], max_parts: int | None = None) -> str:
    """[3,4,5,6,7,12] -> 'units 3-7, 12' (one 'unit' when a single index); '...' past max_parts ranges."""
    idx = sorted(int(i) for i in indices)
    if not idx:
        return "no units"
    parts, start, prev = [], idx[0], idx[0]
    for i in idx[1:] + [None]:
        if i is not None and i == prev + 1:
            prev = i
            continue
        parts.append(f"{start}-{prev}" if prev > start else f"{start}")
        if i is not None:
            start = prev = i
    if max_parts is not None and len(parts) > max_parts:
        parts = parts[:max_parts] + ["..."]
    return ("unit " if len(idx) == 1 else "units ") + ", ".join(parts)


def impact(scup_change: float, mood_influence: str, **extra: float) -> dict:
    """consciousness_impact dict; scup_change clipped to -5..+5."""
    if mood_influence not in MOOD_INFLUENCES:
        raise ValueError(f"mood_influence must be one of {MOOD_INFLUENCES}, got {mood_influence!r}")
    out = {"scup_change": finite(clip(scup_change, -5.0, 5.0)), "mood_influence": mood_influence}
    out.update({k: finite(v) for k, v in extra.items()})
    return out
