"""Neural analyzer: correlation graph of the units over recent ticks, its density, clustering and regions."""

from __future__ import annotations


import numpy as np
from processes.scripts.toolkit.drawing import TEXT, canvas, font, heatmap, png_base64
from processes.scripts.toolkit.request import Emit, read_context, read_parameters
from processes.scripts.toolkit.result import clip, finite, impact, mood_from, unit_ranges

MIN_TICKS = 4


def correlation_matrix(activity: np.ndarray) -> np.ndarray:
    """Pearson correlation of the columns; a unit that never varies correlates 0 with everything."""
    centred = activity - activity.mean(axis=0)
    norms = np.sqrt((centred**2).sum(axis=0))
    flat = norms < 1e-9
    safe = np.where(flat, 1.0, norms)
    z = centred / safe
    corr = np.clip(z.T @ z, -1.0, 1.0)
    corr[flat, :] = 0.0
    corr[:, flat] = 0.0
    np.fill_diagonal(corr, 1.0)
    return corr


def adjacency(corr: np.ndarray, threshold: float, signed: bool) -> np.ndarray:
    """Boolean undirected graph without self-loops."""
    strength = corr if signed else np.abs(corr)
    adj = strength >= threshold
    np.fill_diagonal(adj, False)
    return adj


def clustering_coefficients(adj: np.ndarray) -> np.ndarray:
    """Local clustering: closed triangles at a node over possible ones (0 for degree < 2)."""
    a = adj.astype(np.float64)
    degree = a.sum(axis=1)
    triangles = np.einsum("ij,jk,ki->i", a, a, a) / 2.0
    possible = degree * (degree - 1) / 2.0
    return np.divide(triangles, possible, out=np.zeros_like(triangles), where=possible > 0)


def shortest_paths(adj: np.ndarray) -> np.ndarray:
    """Hop distances by breadth-first frontier expansion on the boolean matrix; inf when unreachable."""
    n = adj.shape[0]
    dist = np.full((n, n), np.inf)
    np.fill_diagonal(dist, 0.0)
    reached = np.eye(n, dtype=bool)
    frontier = reached.copy()
    a = adj.astype(np.int32)
    for hop in range(1, n):
        frontier = ((frontier.astype(np.int32) @ a) > 0) & ~reached
        if not frontier.any():
            break
        dist[frontier] = hop
        reached |= frontier
    return dist


def global_efficiency(dist: np.ndarray) -> float:
    """Mean inverse shortest-path length over ordered pairs (Latora & Marchiori)."""
    n = dist.shape[0]
    if n < 2:
        return 0.0
    off = ~np.eye(n, dtype=bool)
    return float((1.0 / dist[off]).sum() / (n * (n - 1)))


def components(dist: np.ndarray) -> list[list[int]]:
    """Connected components from the reachability in the distance matrix, largest first."""
    n = dist.shape[0]
    seen = np.zeros(n, dtype=bool)
    comps = []
    for i in range(n):
        if seen[i]:
            continue
        members = np.flatnonzero(np.isfinite(dist[i]))
        seen[members] = True
        comps.append(members.tolist())
    return sorted(comps, key=lambda c: (-len(c), c[0]))


def run(request: dict, emit: Emit) -> dict:
    params = read_parameters(request, "neural_analyzer")
    ctx = read_context(request, min_rows=MIN_TICKS)
    activity = ctx.activity[-params["window"]:]
    ticks, n = activity.shape
    emit(f"correlating {n} units over {ticks} ticks")

    corr = correlation_matrix(activity)
    adj = adjacency(corr, params["threshold"], params["signed"])
    degree = adj.sum(axis=1)
    edges = int(adj.sum() // 2)
    density = edges / (n * (n - 1) / 2)
    clustering = clustering_coefficients(adj)
    dist = shortest_paths(adj)
    efficiency = global_efficiency(dist)
    emit(f"graph at |r| >= {params['threshold']:.2f}: {edges} edges, density {density:.3f}")

    off = ~np.eye(n, dtype=bool)
    # Regions are groups of co-active units: anti-correlated populations share an edge in the
    # |r| graph but are not one region, so regions come from the positive edges only.
    positive = adj if params["signed"] else adjacency(corr, params["threshold"], True)
    regions = []
    for members in components(shortest_paths(positive)):
        if len(members) < 2:
            continue
        block = corr[np.ix_(members, members)]
        inner = block[~np.eye(len(members), dtype=bool)]
        regions.append({
            "units": members,
            "label": unit_ranges(members),
            "size": len(members),
            "mean_correlation": finite(inner.mean()),
        })
    isolated = int((degree == 0).sum())
    emit(f"found {len(regions)} regions, {isolated} isolated units")
    reported = regions[: params["max_regions"]]

    hubs = np.argsort(-degree, kind="stable")[:3]
    metrics = {
        "connectivity": finite(density),
        "edges": float(edges),
        "clustering": finite(clustering.mean()),
        "efficiency": finite(efficiency),
        "mean_abs_correlation": finite(np.abs(corr[off]).mean()),
        "mean_degree": finite(degree.mean()),
        "max_degree": float(degree.max()),
        "regions": float(len(regions)),
        "largest_region_fraction": finite(regions[0]["size"] / n if regions else 0.0),
        "isolated_units": float(isolated),
    }

    if reported:
        strongest = max(reported, key=lambda r: (r["mean_correlation"], r["size"]))
        where = f"strongest coupling in {strongest['label']} (mean r {strongest['mean_correlation']:.2f})"
    else:
        where = "no coupled regions"
    level = "High" if density >= 0.3 else "Moderate" if density >= 0.1 else "Low"
    analysis = (
        f"{level} connectivity over {ticks} ticks: density {density:.2f}, clustering {metrics['clustering']:.2f}, "
        f"{len(regions)} region{'s' if len(regions) != 1 else ''}, {where}."
    )

    integration = 0.5 * density + 0.5 * efficiency
    scup_change = 8.0 * (integration - 0.3) + 2.0 * (ctx.consciousness_unity - 0.5)
    return {
        "analysis": analysis,
        "metrics": metrics,
        "visualization": png_base64(_draw(corr, adj, reported, params["threshold"])),
        "consciousness_impact": impact(scup_change, mood_from(clip(scup_change, -5, 5))),
        "regions": reported,
        "hubs": [{"unit": int(u), "degree": int(degree[u])} for u in hubs if degree[u] > 0],
    }


def _draw(corr: np.ndarray, adj: np.ndarray, regions: list[dict], threshold: float):
    """Correlation heatmap (lower-left) with the thresholded graph (upper-right) and region outlines."""
    n = corr.shape[0]
    cell = max(2, 256 // n)
    side = cell * n
    pad_top = 16
    img, draw = canvas((side, side + pad_top))
    shown = corr.copy()
    upper = np.triu(np.ones((n, n), dtype=bool), 1)
    # Upper triangle shows only the edges that survived the threshold, so the graph is visible.
    shown[upper & ~adj] = 0.0
    img.paste(heatmap(shown, (side, side), -1.0, 1.0, "diverging"), (0, pad_top))
    for i, region in enumerate(regions):
        lo, hi = min(region["units"]), max(region["units"])
        colour = (255, 255, 255) if i == 0 else (255, 214, 102)
        draw.rectangle([lo * cell, pad_top + lo * cell, (hi + 1) * cell - 1, pad_top + (hi + 1) * cell - 1], outline=colour)
    draw.text((2, 2), f"unit correlation, edges at |r|>={threshold:.2f}", fill=TEXT, font=font())
    return img

