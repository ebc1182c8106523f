"""Reads of the persisted engine data, for the API, the admin and the commands."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Max, Min, QuerySet

from consciousness.models import MAIN_RUN, EngineSnapshot, Tick


def snapshot_latest(*, run: str = MAIN_RUN) -> EngineSnapshot | None:
    return EngineSnapshot.objects.filter(run=run).first()


def tick_latest() -> Tick | None:
    return Tick.objects.order_by("-tick_number").first()


def ticks_between(*, since: int | None = None, until: int | None = None) -> QuerySet[Tick]:
    """Persisted ticks with since <= tick_number <= until, oldest first."""
    queryset = Tick.objects.order_by("tick_number")
    if since is not None:
        queryset = queryset.filter(tick_number__gte=since)
    if until is not None:
        queryset = queryset.filter(tick_number__lte=until)
    return queryset


def tick_data_iter(*, since: int | None = None, until: int | None = None, chunk_size: int = 2000) -> Iterator[dict]:
    """Stream persisted ticks in the Tick Data Format without loading the whole history."""
    for row in ticks_between(since=since, until=until).iterator(chunk_size=chunk_size):
        yield row.as_tick_data()


def tick_data_between(*, since: int, until: int) -> list[dict]:
    """Persisted ticks since..until (inclusive) in the Tick Data Format, oldest first."""
    return [row.as_tick_data() for row in ticks_between(since=since, until=until)]


def tick_number_bounds() -> tuple[int | None, int | None]:
    """The lowest and highest persisted tick_number (None, None when there are none)."""
    bounds = Tick.objects.aggregate(low=Min("tick_number"), high=Max("tick_number"))
    return bounds["low"], bounds["high"]


def epoch_latest(*, run: str = MAIN_RUN) -> str | None:
    """The epoch of the stored run, or None before its first snapshot."""
    epoch = EngineSnapshot.objects.filter(run=run).values_list("epoch", flat=True).first()
    return str(epoch) if epoch is not None else None
