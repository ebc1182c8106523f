"""Reads of process records, for the API, the admin and the dispatcher."""

from __future__ import annotations

from processes.models import MemoryConsolidation


def patterns_recent(*, limit: int = 16) -> list[dict]:
    """The long-term patterns of the newest consolidation, as the dream generator reads them."""
    newest = MemoryConsolidation.objects.order_by("-run_id").values_list("run_id", flat=True).first()
    if newest is None:
        return []
    rows = MemoryConsolidation.objects.filter(run_id=newest).order_by("-weight")[:limit]
    return [{"centroid": row.centroid, "weight": row.weight, "label": row.label} for row in rows]
