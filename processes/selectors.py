"""Reads of process records, for the API, the admin and the dispatcher."""

from __future__ import annotations

import uuid

from consciousness.selectors import ticks_between
from processes.models import MemoryConsolidation, ProcessRun


def patterns_recent(*, limit: int = 16, at: int | None = None, epoch: uuid.UUID | None = None) -> list[dict]:
    """The long-term patterns of the newest consolidation, as the dream generator reads them.

    With `at` (a run's trigger tick), only consolidations of this engine run whose impact was due at or
    before that tick count, newest due first: what a run sees then depends on ticks, not on wall time.
    """
    consolidations = MemoryConsolidation.objects.all()
    order = ["-run_id"]
    if at is not None:
        consolidations = consolidations.filter(run__epoch=epoch, run__impact_due_tick__lte=at)
        order = ["-run__impact_due_tick", "-run__tick_number", "-run_id"]
    newest = consolidations.order_by(*order).values_list("run_id", flat=True).first()
    if newest is None:
        return []
    rows = MemoryConsolidation.objects.filter(run_id=newest).order_by("-weight", "id")[:limit]
    return [{"centroid": row.centroid, "weight": row.weight, "label": row.label} for row in rows]


def tick_moods(*, since: int, until: int) -> dict[int, str]:
    """The mood of each persisted tick since..until: the engine keeps no past moods, a run's context needs one."""
    return dict(ticks_between(since=since, until=until).values_list("tick_number", "mood"))


def runs_finished(*, ids: list[int]) -> set[int]:
    """Which of the runs `ids` have finished (e.g. cancelled while queued, so never claimed)."""
    return set(ProcessRun.objects.filter(pk__in=ids, status__in=ProcessRun.FINISHED).values_list("pk", flat=True))
