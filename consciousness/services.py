"""The only code that writes the engine's models."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from django.contrib.auth import get_user_model
from django.db import connection, models, transaction
from django.utils import timezone as dj_timezone

from consciousness.engine import TICK_FIGURES
from consciousness.models import MAIN_RUN, EngineControl, EngineSnapshot, Tick


def _tick_values(tick: dict) -> dict:
    """The Tick row of a tick, by field name."""
    return {
        "tick_number": tick["tick_number"],
        "timestamp": tick["timestamp"],
        "recorded_at": datetime.fromtimestamp(tick["timestamp"], tz=timezone.utc),
        "active_processes": list(tick["active_processes"]),
        "subsystems": tick["subsystems"],
        **{name: tick[name] for name in TICK_FIGURES},
    }


def _ticks_insert(ticks: list[dict]) -> None:
    """INSERT the ticks with one executemany: the ORM's bulk_create compiles every value of every row into
    its SQL (and, under DEBUG, quotes them again for the query log), ten times the cost of the write itself."""
    ops = connection.ops
    fields = Tick._meta.concrete_fields
    adapters = [
        (lambda v, encoder=f.encoder: ops.adapt_json_value(v, encoder)) if isinstance(f, models.JSONField)
        else ops.adapt_datetimefield_value if isinstance(f, models.DateTimeField)
        else None
        for f in fields
    ]
    columns = ", ".join(ops.quote_name(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    sql = f"INSERT INTO {ops.quote_name(Tick._meta.db_table)} ({columns}) VALUES ({placeholders})"
    rows = []
    for tick in ticks:
        values = _tick_values(tick)
        rows.append(tuple(
            values[f.name] if adapt is None else adapt(values[f.name]) for f, adapt in zip(fields, adapters)
        ))
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def history_flush(*, ticks: list[dict], snapshot: dict, epoch: uuid.UUID, seed: int, tick_number: int, run: str = MAIN_RUN) -> None:
    """Write a batch of ticks and the snapshot as of its last tick in one transaction.

    The snapshot therefore never runs ahead of the history: after a crash the engine resumes
    at the first tick that is not persisted, and regenerates it.
    """
    now = dj_timezone.now()
    # the epoch rides inside the state too, so that a row whose columns were changed is detected at resume
    snapshot = {**snapshot, "epoch": str(epoch)}
    with transaction.atomic():
        if ticks:
            _ticks_insert(ticks)
        updated = EngineSnapshot.objects.filter(run=run).update(
            epoch=epoch, seed=seed, tick_number=tick_number, state=snapshot, saved_at=now
        )
        if not updated:
            EngineSnapshot.objects.create(
                run=run, epoch=epoch, seed=seed, tick_number=tick_number, state=snapshot, started_at=now, saved_at=now
            )


def history_prune(*, retention: timedelta) -> int:
    """Delete ticks recorded longer ago than `retention`; returns how many went."""
    cutoff = dj_timezone.now() - retention
    deleted, _ = Tick.objects.filter(recorded_at__lt=cutoff).delete()
    return deleted


def history_discard_after(*, tick_number: int) -> int:
    """Delete ticks beyond the snapshot (none should exist: the flush is atomic); returns how many went."""
    deleted, _ = Tick.objects.filter(tick_number__gt=tick_number).delete()
    return deleted


def history_reset(*, run: str = MAIN_RUN) -> None:
    """Forget the run: its snapshot and the whole tick history."""
    with transaction.atomic():
        EngineSnapshot.objects.filter(run=run).delete()
        Tick.objects.all().delete()


def control_record(
    *,
    command: uuid.UUID,
    action: str,
    ticks: int | None,
    rate: float | None,
    outcome: str,
    detail: str,
    tick_number: int,
    paused: bool,
    tick_rate: float | None,
    epoch: uuid.UUID,
    requested_by_id: int | None,
    label: str,
    requested_at: datetime,
    applied_at: datetime,
) -> EngineControl:
    """Journal a control command the engine handled, once: the same command id again is the same row."""
    if requested_by_id is not None and not get_user_model().objects.filter(pk=requested_by_id).exists():
        requested_by_id = None  # the user went meanwhile; the label still names them
    row, _created = EngineControl.objects.get_or_create(
        command=command,
        defaults=dict(
            action=action, ticks=ticks, rate=rate, outcome=outcome, detail=detail[:200],
            tick_number=tick_number, paused=paused, tick_rate=tick_rate, epoch=epoch,
            requested_by_id=requested_by_id, label=label[:150], requested_at=requested_at, applied_at=applied_at,
        ),
    )
    return row
