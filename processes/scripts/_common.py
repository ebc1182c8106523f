"""Shared plumbing for the analysis scripts: request checks, parameters, PNG drawing, entry point.

Pure Python + numpy + Pillow; never imports django. Nothing here does work at import.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFont

Emit = Callable[[str], None]
RunFn = Callable[[dict, Emit], dict]

MOODS = ("positive", "negative", "neutral")

# Exit codes of main_entry.
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_BAD_REQUEST = 2


class ParameterError(ValueError):
    """A parameter failed validation; `field` names the offending key."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# --------------------------------------------------------------------------- parameters

_TYPE_NAMES = {"integer", "number", "boolean", "string"}


def _check_type(name: str, kind: str, value: object) -> object:
    if kind == "boolean":
        if not isinstance(value, bool):
            raise ParameterError(name, f"must be a boolean, got {type(value).__name__}")
        return value
    if kind == "string":
        if not isinstance(value, str):
            raise ParameterError(name, f"must be a string, got {type(value).__name__}")
        return value
    # bool is an int subclass in Python; a flag is never a count or a level.
    if isinstance(value, bool):
        raise ParameterError(name, f"must be {'an integer' if kind == 'integer' else 'a number'}, got a boolean")
    if kind == "integer":
        if not isinstance(value, int):
            raise ParameterError(name, f"must be an integer, got {type(value).__name__}")
        return int(value)
    if kind == "number":
        if not isinstance(value, (int, float)):
            raise ParameterError(name, f"must be a number, got {type(value).__name__}")
        if not math.isfinite(value):
            raise ParameterError(name, "must be finite")
        return float(value)
    raise ParameterError(name, f"schema declares unknown type {kind!r}")


def validate_parameters(schema: dict, params: Mapping) -> dict:
    """Return params with defaults applied; raise ParameterError on any unknown, mistyped or out-of-range value."""
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise ParameterError("parameters", f"must be an object, got {type(params).__name__}")
    for key in params:
        if not isinstance(key, str) or key not in schema:
            raise ParameterError(str(key), f"unknown parameter (expected one of: {', '.join(sorted(schema))})")
    out = {}
    for name, spec in schema.items():
        kind = spec["type"]
        if kind not in _TYPE_NAMES:
            raise ParameterError(name, f"schema declares unknown type {kind!r}")
        value = _check_type(name, kind, params[name] if name in params else spec["default"])
        if "minimum" in spec and value < spec["minimum"]:
            raise ParameterError(name, f"must be >= {spec['minimum']}, got {value}")
        if "maximum" in spec and value > spec["maximum"]:
            raise ParameterError(name, f"must be <= {spec['maximum']}, got {value}")
        if "choices" in spec and value not in spec["choices"]:
            raise ParameterError(name, f"must be one of {list(spec['choices'])}, got {value!r}")
        out[name] = value
    return out


# --------------------------------------------------------------------------- request

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


# --------------------------------------------------------------------------- result helpers

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
    if score > dead_zone:
        return "positive"
    if score < -dead_zone:
        return "negative"
    return "neutral"


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
    if mood_influence not in MOODS:
        raise ValueError(f"mood_influence must be one of {MOODS}")
    out = {"scup_change": finite(clip(scup_change, -5.0, 5.0)), "mood_influence": mood_influence}
    out.update({k: finite(v) for k, v in extra.items()})
    return out


# --------------------------------------------------------------------------- drawing

_COLORMAPS = {
    # viridis-like anchors, sequential
    "viridis": ((0.0, (68, 1, 84)), (0.25, (59, 82, 139)), (0.5, (33, 145, 140)),
                (0.75, (94, 201, 98)), (1.0, (253, 231, 37))),
    # blue - near-black - red, for signed values
    "diverging": ((0.0, (49, 54, 149)), (0.25, (116, 173, 209)), (0.5, (20, 20, 28)),
                  (0.75, (244, 109, 67)), (1.0, (165, 0, 38))),
    # black - purple - orange - white, for densities
    "inferno": ((0.0, (0, 0, 4)), (0.3, (87, 16, 110)), (0.6, (212, 72, 66)),
                (0.85, (250, 166, 26)), (1.0, (252, 255, 164))),
}

BACKGROUND = (16, 18, 28)
AXIS = (110, 116, 140)
TEXT = (220, 222, 235)
PALETTE = ((255, 196, 61), (86, 204, 242), (235, 87, 160), (111, 207, 151), (187, 134, 252), (242, 153, 74))


def colormap(values: np.ndarray, vmin: float, vmax: float, name: str = "viridis") -> np.ndarray:
    """Map a float array to uint8 RGB (shape + (3,)) with a piecewise-linear colormap."""
    anchors = _COLORMAPS[name]
    span = vmax - vmin if vmax > vmin else 1.0
    t = np.clip((np.asarray(values, dtype=np.float64) - vmin) / span, 0.0, 1.0)
    t = np.nan_to_num(t, nan=0.0)
    xs = [a[0] for a in anchors]
    rgb = np.stack([np.interp(t, xs, [a[1][c] for a in anchors]) for c in range(3)], axis=-1)
    return np.round(rgb).astype(np.uint8)


def heatmap(matrix: np.ndarray, size: tuple[int, int], vmin: float, vmax: float, name: str = "viridis") -> Image.Image:
    """Render a 2-D float matrix as a nearest-neighbour upscaled colour image of `size` (w, h)."""
    return Image.fromarray(colormap(matrix, vmin, vmax, name)).resize(size, Image.Resampling.NEAREST)


@functools.lru_cache(maxsize=1)
def font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's bundled font, loaded on first use rather than at import."""
    try:
        return ImageFont.load_default(size=11)
    except (ImportError, OSError):  # Pillow built without FreeType
        return ImageFont.load_default()


def canvas(size: tuple[int, int]) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    img = Image.new("RGB", size, BACKGROUND)
    return img, ImageDraw.Draw(img)


def plot_lines(
    draw: ImageDraw.ImageDraw,
    box: tuple[int, int, int, int],
    curves: Sequence[tuple[np.ndarray, tuple[int, int, int]]],
    y_range: tuple[float, float],
    x_values: np.ndarray | None = None,
) -> None:
    """Draw each (values, colour) series as a polyline inside box (x0, y0, x1, y1) with a frame."""
    x0, y0, x1, y1 = box
    draw.rectangle(box, outline=AXIS)
    lo, hi = y_range
    span = hi - lo if hi > lo else 1.0
    for frac in (0.25, 0.5, 0.75):
        gy = y1 - frac * (y1 - y0)
        draw.line([(x0 + 1, gy), (x1 - 1, gy)], fill=(40, 44, 60))
    for values, colour in curves:
        v = np.asarray(values, dtype=np.float64)
        if v.size == 0:
            continue
        xs = np.arange(v.size, dtype=np.float64) if x_values is None else np.asarray(x_values, dtype=np.float64)
        xspan = xs[-1] - xs[0] if xs.size > 1 and xs[-1] > xs[0] else 1.0
        px = x0 + 2 + (xs - xs[0]) / xspan * (x1 - x0 - 4)
        py = y1 - 2 - np.clip((v - lo) / span, 0.0, 1.0) * (y1 - y0 - 4)
        points = list(zip(px.tolist(), py.tolist()))
        if len(points) == 1:
            draw.ellipse([points[0][0] - 2, points[0][1] - 2, points[0][0] + 2, points[0][1] + 2], fill=colour)
        else:
            draw.line(points, fill=colour, width=2)


def legend(draw: ImageDraw.ImageDraw, origin: tuple[int, int], entries: Sequence[tuple[str, tuple[int, int, int]]]) -> None:
    """Colour swatch + label per entry, laid out left to right from origin."""
    x, y = origin
    f = font()
    for label, colour in entries:
        draw.rectangle([x, y + 3, x + 8, y + 11], fill=colour)
        draw.text((x + 12, y), label, fill=TEXT, font=f)
        x += 18 + int(draw.textlength(label, font=f))


def png_base64(image: Image.Image | np.ndarray) -> str:
    """Encode a Pillow image or a 2-D/3-D numpy array (uint8 0..255 or float 0..1) as base64 PNG."""
    if isinstance(image, np.ndarray):
        arr = image
        if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
            raise ValueError(f"expected a 2-D or (h, w, 3|4) array, got shape {arr.shape}")
        if arr.dtype != np.uint8:
            arr = np.round(np.clip(np.nan_to_num(arr.astype(np.float64)), 0.0, 1.0) * 255.0).astype(np.uint8)
        image = Image.fromarray(np.ascontiguousarray(arr))
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=6)
    return base64.b64encode(buf.getvalue()).decode("ascii")


# --------------------------------------------------------------------------- entry point

def _stderr_line(message: str) -> None:
    sys.stderr.write(" ".join(str(message).split()) + "\n")
    sys.stderr.flush()


def main_entry(run_fn: RunFn) -> int:
    """Read one JSON request (stdin, or argv[1] if given), run, print the result as one JSON line.

    Exit 0 on success, 2 on a bad request (one line on stderr), 1 on anything unexpected.
    """
    try:
        raw = sys.argv[1] if len(sys.argv) > 1 else sys.stdin.read()
        try:
            request = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"request is not valid JSON: {exc}") from None
        result = run_fn(request, _stderr_line)
    except ValueError as exc:  # includes ParameterError
        _stderr_line(f"bad request: {exc}")
        return EXIT_BAD_REQUEST
    except Exception as exc:  # noqa: BLE001 - the exit code is the interface
        _stderr_line(f"error: {type(exc).__name__}: {exc}")
        return EXIT_ERROR
    try:
        text = json.dumps(result, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:  # a result that is not plain finite JSON is a script bug
        _stderr_line(f"error: result is not JSON-safe: {exc}")
        return EXIT_ERROR
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
    return EXIT_OK
