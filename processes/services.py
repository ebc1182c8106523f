"""The only code that writes ProcessRun and MemoryConsolidation rows."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.exceptions import ValidationError
from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from consciousness.groups import ENGINE_GROUP, ENGINE_PROCESS_CANCEL, ENGINE_PROCESSES
from processes.inflight import MANUAL
from processes.models import MemoryConsolidation, ProcessRun
from processes.registry import analysis_spec, parameters_validate, script_modules
from processes.sandbox import Execution, Outcome
from processes.scripts.specs import RECORDS_KEY, ParameterError

logger = logging.getLogger(__name__)

Status = ProcessRun.Status
SUPERSEDED = "superseded"  # the reason of a run whose trigger tick lies beyond the snapshot the engine resumed from

# The kinds of rows a script's result may ask to record (an analysis spec's `records`), and their models.
RECORD_MODELS: dict[str, type[models.Model]] = {"consolidations": MemoryConsolidation}


class RunRejected(ValueError):
    """A run request that cannot be accepted; `field` names the offending input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class RunNotCancellable(ValueError):
    """The run has already finished."""


def run_validate(*, script: object, parameters: object) -> tuple[str, dict]:
    """Check a script name against the registry and its parameters against the script's schema."""
    if not isinstance(script, str) or script not in script_modules():
        raise RunRejected("script", f"unknown script {script!r}; known: {', '.join(sorted(script_modules()))}")
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, Mapping):
        raise RunRejected("parameters", "must be a JSON object")
    try:
        return script, parameters_validate(script, parameters)
    except ParameterError as exc:
        raise RunRejected(f"parameters.{exc.field}", exc.message) from None


class RunsBusy(Exception):
    """Too many runs are waiting (the poster's or everyone's); try again in `retry_after` seconds."""

    def __init__(self, message: str, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def run_create(
    *,
    script: object,
    parameters: object = None,
    trigger: str = MANUAL,
    wake: bool = True,
    tick_number: int | None = None,
    impact_due_tick: int | None = None,
    epoch: uuid.UUID | None = None,
    requested_by=None,
) -> ProcessRun:
    """Queue a run (validated first: nothing is recorded for a bad request) and wake the engine's dispatcher.

    An auto-triggered run carries its trigger tick, due tick and epoch from the start; a manual one gets
    them when it is claimed. A posted run is refused with RunsBusy while its poster, or everyone together,
    has the configured most runs waiting; the tick rules' own runs are never refused.
    """
    script, parameters = run_validate(script=script, parameters=parameters)
    with transaction.atomic():
        if trigger == MANUAL:
            _queue_bound_check(requested_by)
        run = ProcessRun.objects.create(
            script=script, parameters=parameters, trigger=trigger, tick_number=tick_number,
            impact_due_tick=impact_due_tick, epoch=epoch, requested_by=requested_by,
        )
        run.process_id = f"{script}_{run.pk:06d}"
        run.save(update_fields=["process_id"])
    if wake:
        engine_notify({"type": ENGINE_PROCESSES})
    return run


def _queue_bound_check(requested_by) -> None:
    limits = settings.DAWN_CONFIG["processes"]
    queued = ProcessRun.objects.filter(status=Status.QUEUED, trigger=MANUAL)
    if requested_by is not None and queued.filter(requested_by=requested_by).count() >= limits["max_queued_per_user"]:
        raise RunsBusy(f"you have {limits['max_queued_per_user']} runs waiting already; wait for them to start")
    if queued.count() >= limits["max_queued"]:
        raise RunsBusy(f"{limits['max_queued']} runs are waiting already; try again shortly")


def runs_prune(*, retention: timedelta) -> int:
    """Delete finished runs (and their consolidations) that ended longer ago than `retention`."""
    cutoff = timezone.now() - retention
    deleted, _ = ProcessRun.objects.filter(status__in=ProcessRun.FINISHED, end_time__lt=cutoff).delete()
    return deleted


def engine_notify(message: dict) -> None:
    """Tell runtick (wherever it runs) through the channel layer; the row stays the record if this is lost."""
    try:
        async_to_sync(get_channel_layer().group_send)(ENGINE_GROUP, message)
    except Exception as exc:
        logger.warning("could not notify the engine (%r); it polls the queue anyway", exc)


def run_cancel(*, run: ProcessRun) -> ProcessRun:
    """Cancel a queued run at once; ask the dispatcher to kill a running one."""
    if ProcessRun.objects.filter(pk=run.pk, status=Status.QUEUED).update(
        status=Status.CANCELLED, reason="cancelled before it started", end_time=timezone.now(), cancel_requested=True
    ):
        run.refresh_from_db()
        return run
    if ProcessRun.objects.filter(pk=run.pk, status=Status.RUNNING).update(cancel_requested=True):
        engine_notify({"type": ENGINE_PROCESS_CANCEL, "run": run.pk})
        run.refresh_from_db()
        return run
    run.refresh_from_db()
    raise RunNotCancellable(f"run {run.process_id} has already finished ({run.status})")


def run_claim_next(
    *, tick_number: int | None = None, impact_delay: int = 0, epoch: uuid.UUID | None = None
) -> ProcessRun | None:
    """Take the oldest queued run and mark it running (atomic, so two claimers never take the same run).

    A run without a trigger tick (manual) is claimed at `tick_number`: it analyses that tick, and its impact
    is due `impact_delay` ticks later.
    """
    with transaction.atomic():
        queued = ProcessRun.objects.filter(status=Status.QUEUED).order_by("id")
        candidate = queued.select_for_update(skip_locked=True).first() if _locks_rows() else queued.first()
        if candidate is None:
            return None
        candidate.status = Status.RUNNING
        candidate.start_time = timezone.now()
        fields = ["status", "start_time"]
        if candidate.tick_number is None and tick_number is not None:
            candidate.tick_number, candidate.impact_due_tick = tick_number, tick_number + impact_delay
            candidate.epoch = epoch
            fields += ["tick_number", "impact_due_tick", "epoch"]
        candidate.save(update_fields=fields)
        return candidate


def _locks_rows() -> bool:
    from django.db import connection

    return connection.features.has_select_for_update_skip_locked


def run_started(*, run: ProcessRun, context: dict, seed: int, tick_number: int) -> None:
    run.context, run.seed, run.tick_number = context, seed, tick_number
    run.save(update_fields=["context", "seed", "tick_number"])


def run_finished(*, run: ProcessRun, execution: Execution) -> ProcessRun:
    """Record how a run ended, with the rows a completed run's result asks for (its spec's records).

    A result whose records its spec does not declare, or whose rows do not fit, fails the run instead.
    """
    run.status = execution.status
    run.end_time = timezone.now()
    run.exit_code = execution.exit_code
    run.signal = execution.signal
    run.reason = execution.reason
    rows: list[models.Model] = []
    if execution.status == Outcome.COMPLETED and execution.result is not None:
        result = dict(execution.result)
        run.consciousness_impact = result.pop("consciousness_impact", None)
        records = result.pop(RECORDS_KEY, None) or {}
        run.output = result
        try:
            rows = _records(run, records)
        except (KeyError, TypeError, ValueError, ValidationError) as exc:
            run.status, run.reason = Status.FAILED, f"result records are unusable: {exc}"
            run.consciousness_impact = None
    with transaction.atomic():
        run.save()
        for model in {type(row) for row in rows}:
            model.objects.bulk_create([row for row in rows if type(row) is model])
    return run


def _records(run: ProcessRun, records: object) -> list[models.Model]:
    """The rows a result asks for ({kind: [row, ...]}, kinds from the spec), unsaved, checked field by field."""
    if not isinstance(records, Mapping):
        raise ValueError(f"{RECORDS_KEY} must be an object of kind -> rows")
    declared = set(analysis_spec(run.script).records)
    rows = []
    for kind, items in records.items():
        if kind not in declared or kind not in RECORD_MODELS:
            raise ValueError(f"{run.script} does not declare records of kind {kind!r}")
        if not isinstance(items, list) or not all(isinstance(item, Mapping) for item in items):
            raise ValueError(f"{RECORDS_KEY}.{kind} must be a list of objects")
        model = RECORD_MODELS[kind]
        fields = {f.name for f in model._meta.concrete_fields if f.editable and not f.primary_key} - {"run"}
        for item in items:
            if unknown := set(item) - fields:
                raise ValueError(f"{RECORDS_KEY}.{kind} rows have unknown fields {sorted(unknown)}")
            row = model(run=run, **item)
            row.clean_fields(exclude=["run"])
            rows.append(row)
    return rows


def run_applied(*, process_id: str, tick_number: int) -> None:
    ProcessRun.objects.filter(process_id=process_id).update(applied_at_tick=tick_number)


def run_requeue(*, run: ProcessRun, reason: str) -> None:
    """Put a run that was stopped before it finished back in the queue, with its trigger and due ticks."""
    ProcessRun.objects.filter(pk=run.pk).update(status=Status.QUEUED, start_time=None, reason=reason)


def run_abandon(*, run: ProcessRun, reason: str) -> ProcessRun:
    """Give up a run that cannot be executed as it was asked for (its context is gone)."""
    run.status, run.reason, run.end_time = Status.ABANDONED, reason, timezone.now()
    run.save(update_fields=["status", "reason", "end_time"])
    return run


def runs_abandon_running() -> int:
    """Runs left `running` by a runner that died are abandoned (never re-run automatically)."""
    return ProcessRun.objects.filter(status=Status.RUNNING).update(
        status=Status.ABANDONED, end_time=timezone.now(), reason="the runner stopped while the run was running"
    )


@dataclass
class RunsResumed:
    """What the runs of an engine resumed at a snapshot became: `inflight` are the rows between their trigger
    (or claim) and their impact at the snapshot's tick, `rerun` those of them to execute again."""

    inflight: list[ProcessRun] = field(default_factory=list)
    rerun: list[ProcessRun] = field(default_factory=list)
    superseded: int = 0
    reclaimed: int = 0
    abandoned: int = 0


def runs_resume(
    *, epoch: uuid.UUID | None, tick_number: int, pending: list[dict], applied: Sequence[dict] = ()
) -> RunsResumed:
    """Make the runs agree with an engine resumed at tick `tick_number`, whose snapshot listed `pending`, and
    `applied`: runs whose impact a tick up to the snapshot applied, their row perhaps not told (a kill came
    between the flush and that write), each with the tick that applied it.

    In one transaction: auto-triggered runs of later ticks (the regenerated ticks fire them again) are
    superseded and their consolidations deleted; each pending run is kept (completed: its impact will be
    queued again) or put back in the queue to run again on its own tick, or created if its row was lost;
    manual runs claimed after the snapshot was taken go back to the queue, or stay in flight if completed;
    auto-triggered runs of another engine run, and any other run left running, are abandoned.
    """
    mine = ProcessRun.objects.filter(epoch=epoch) if epoch is not None else ProcessRun.objects.none()
    with transaction.atomic():
        beyond = mine.filter(tick_number__gt=tick_number).exclude(trigger=MANUAL).exclude(status=Status.ABANDONED)
        superseded = list(beyond.values_list("pk", flat=True))
        MemoryConsolidation.objects.filter(run_id__in=superseded).delete()
        ProcessRun.objects.filter(pk__in=superseded).update(
            status=Status.ABANDONED, applied_at_tick=None, end_time=timezone.now(),
            reason=f"{SUPERSEDED}: its tick comes after tick {tick_number}, where the engine resumed",
        )
        for entry in applied:
            if (row := _pending_row(mine, entry, epoch, create=False)) is not None:
                ProcessRun.objects.filter(pk=row.pk).update(applied_at_tick=int(entry["applied"]))
        rows = [row for row in (_pending_row(mine, entry, epoch) for entry in pending) if row is not None]
        kept = [row.pk for row in rows]
        manual = mine.filter(trigger=MANUAL, tick_number__isnull=False).exclude(pk__in=kept)
        # claimed after the snapshot's list was taken: hence at its tick or later, never applied by it
        completed = manual.filter(status=Status.COMPLETED, consciousness_impact__isnull=False)
        rows += list(completed.filter(tick_number__gte=tick_number))
        reclaimed = manual.exclude(status__in=ProcessRun.FINISHED).update(
            status=Status.QUEUED, tick_number=None, impact_due_tick=None, epoch=None, start_time=None
        )
        rerun = [row.pk for row in rows if not row.finished]
        ProcessRun.objects.filter(pk__in=rerun).update(status=Status.QUEUED, start_time=None)
        ProcessRun.objects.filter(pk__in=[row.pk for row in rows]).update(applied_at_tick=None)
        foreign = ProcessRun.objects.filter(status=Status.QUEUED).exclude(trigger=MANUAL).exclude(epoch=epoch)
        abandoned = foreign.update(
            status=Status.ABANDONED, end_time=timezone.now(), reason="triggered in another engine run"
        )
        abandoned += runs_abandon_running()
    for row in rows:
        row.refresh_from_db()
    return RunsResumed(
        inflight=rows, rerun=[row for row in rows if row.pk in rerun], superseded=len(superseded),
        reclaimed=reclaimed, abandoned=abandoned,
    )


def _pending_row(
    mine: models.QuerySet, entry: dict, epoch: uuid.UUID | None, *, create: bool = True
) -> ProcessRun | None:
    """The row of a run the snapshot lists; an auto-triggered one is created (queued) if it was never written
    (unless not `create`), a manual one is found by its id."""
    if entry.get("run") is not None:
        return mine.filter(pk=entry["run"]).first()
    script, trigger, tick, due = entry["script"], entry["trigger"], int(entry["tick"]), int(entry["due"])
    same = mine.filter(script=script, trigger=trigger, tick_number=tick).exclude(reason__startswith=SUPERSEDED)
    row = same.order_by("id").first()
    if row is None and create:
        row = run_create(
            script=script, trigger=trigger, wake=False, tick_number=tick, impact_due_tick=due, epoch=epoch
        )
    return row
