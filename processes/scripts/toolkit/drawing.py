"""Pictures for the results: colormaps, heatmaps, line plots and legends on a dark canvas, encoded as PNG."""

from __future__ import annotations

import base64
import functools
import io
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

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
