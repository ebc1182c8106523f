"""A script's request: its parameters (checked against its spec), the engine context and memory patterns."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from processes.scripts.specs import SPECS, ParameterError, schema_validate

Emit = Callable[[str], None]

__all__ = [
    "Context", "Emit", "ParameterError", "Pattern", "read_context", "read_parameters", "read_patterns", "request_seed",
]


def read_parameters(request: Mapping, script: str) -> dict:
    """The request's parameters checked against `script`'s JSON Schema, defaults filled in (ParameterError)."""
    parameters = request.get("parameters", {}) if isinstance(request, Mapping) else {}
    return schema_validate(SPECS[script].parameters, parameters)


@dataclass(frozen=True)
class Context:
    """The engine's view handed to a script: latest scalars plus recent per-unit activity."""

    tick_number: int
    scup: float
    entropy: float
    mood: str
    neural_activity: float
    consciousness_unity: float
    memory_pressure: float
    activity: np.ndarray  # (ticks, units), oldest row first, float64, read-only
    series: dict = field(default_factory=dict)  # name -> 1-D float64 array, oldest first

    @property
    def units(self) -> int:
        return int(self.activity.shape[1])

    @property
    def ticks(self) -> int:
        return int(self.activity.shape[0])


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _finite_number(where: str, value: object) -> float:
    if not _is_number(value) or not math.isfinite(value):
        raise ValueError(f"{where} must be a finite number, got {value!r}")
    return float(value)


def _matrix(where: str, rows: object, width: int | None = None) -> np.ndarray:
    """Parse a list of equal-length lists of finite numbers into a float64 matrix."""
    if not isinstance(rows, Sequence) or isinstance(rows, (str, bytes)):
        raise ValueError(f"{where} must be a list of rows")
    for i, row in enumerate(rows):
        if not isinstance(row, Sequence) or isinstance(row, (str, bytes)):
            raise ValueError(f"{where}[{i}] must be a list of numbers")
        if any(not _is_number(v) for v in row):
            raise ValueError(f"{where}[{i}] must contain only numbers")
    lengths = {len(row) for row in rows}
    if len(lengths) > 1:
        raise ValueError(f"{where} rows must all have the same length, got lengths {sorted(lengths)}")
    matrix = np.array(rows, dtype=np.float64).reshape(len(rows), lengths.pop() if lengths else 0)
    if not np.all(np.isfinite(matrix)):
        raise ValueError(f"{where} must contain only finite numbers")
    if width is not None and matrix.shape[1] != width:
        raise ValueError(f"{where} rows must have {width} values (units), got {matrix.shape[1]}")
    return matrix


def request_seed(request: Mapping) -> int:
    """The request's seed: a non-negative integer."""
    seed = request.get("seed")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return seed


def read_context(request: object, *, min_rows: int = 2, min_units: int = 2) -> Context:
    """Check the request's shape and return its context; ValueError with a clear message if malformed."""
    if not isinstance(request, Mapping):
        raise ValueError(f"request must be a JSON object, got {type(request).__name__}")
    request_seed(request)
    ctx = request.get("context")
    if not isinstance(ctx, Mapping):
        raise ValueError("request.context is missing or not an object")
    if "activity" not in ctx:
        raise ValueError("context.activity is missing")
    activity = _matrix("context.activity", ctx["activity"])
    ticks, units = activity.shape
    if ticks < min_rows:
        raise ValueError(f"context.activity needs at least {min_rows} rows (ticks), got {ticks}")
    if units < min_units:
        raise ValueError(f"context.activity rows need at least {min_units} units, got {units}")
    if "units" in ctx:
        declared = ctx["units"]
        if not isinstance(declared, int) or isinstance(declared, bool) or declared != units:
            raise ValueError(f"context.units is {declared!r} but activity rows have {units} values")
    tick_number = ctx.get("tick_number")
    if not isinstance(tick_number, int) or isinstance(tick_number, bool) or tick_number < 0:
        raise ValueError(f"context.tick_number must be a non-negative integer, got {tick_number!r}")
    mood = ctx.get("mood", "neutral")
    if not isinstance(mood, str):
        raise ValueError(f"context.mood must be a string, got {mood!r}")
    defaults = {"scup": 50.0, "entropy": 0.5, "neural_activity": float(activity[-1].mean()),
                "consciousness_unity": 0.5, "memory_pressure": 0.0}
    scalars = {name: _finite_number(f"context.{name}", ctx[name]) if name in ctx else default
               for name, default in defaults.items()}
    series_in = ctx.get("series", {})
    if not isinstance(series_in, Mapping):
        raise ValueError("context.series must be an object of name -> list of numbers")
    series = {}
    for name, values in series_in.items():
        if not isinstance(values, Sequence) or isinstance(values, (str, bytes)) or any(
            not _is_number(v) for v in values
        ):
            raise ValueError(f"context.series.{name} must be a list of numbers")
        arr = np.array(values, dtype=np.float64)
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"context.series.{name} must contain only finite numbers")
        arr.setflags(write=False)
        series[str(name)] = arr
    activity.setflags(write=False)
    return Context(tick_number=tick_number, mood=mood, activity=activity, series=series, **scalars)


@dataclass(frozen=True)
class Pattern:
    centroid: np.ndarray
    weight: float
    label: str


def read_patterns(request: Mapping, units: int) -> list[Pattern]:
    """Parse request["patterns"] (may be absent or empty); each centroid must have `units` values."""
    raw = request.get("patterns", [])
    if raw is None:
        return []
    if not isinstance(raw, Sequence) or isinstance(raw, (str, bytes)):
        raise ValueError("patterns must be a list of objects")
    patterns = []
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping) or "centroid" not in item:
            raise ValueError(f"patterns[{i}] must be an object with a centroid")
        centroid = _matrix(f"patterns[{i}].centroid", [item["centroid"]], units)[0]
        weight = _finite_number(f"patterns[{i}].weight", item.get("weight", 1.0))
        if weight < 0:
            raise ValueError(f"patterns[{i}].weight must be >= 0, got {weight}")
        label = item.get("label", f"pattern {i + 1}")
        if not isinstance(label, str):
            raise ValueError(f"patterns[{i}].label must be a string")
        patterns.append(Pattern(centroid=centroid, weight=weight, label=label))
    return patterns
