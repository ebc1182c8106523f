"""ProcessDispatcher: runs queued ProcessRuns inside runtick and feeds their results back to the engine.

The database row is the record and the queue: any serving process may queue a run and send a wake-up
through the channel layer; this dispatcher (one per engine) claims runs in order, at most
`max_concurrent` at a time, and polls as well, so a lost wake-up only delays a run.

A run analyses one tick (its trigger's, or its claim's if manual) and its impact is due `impact_delay`
ticks later, whatever the script's wall time; a run that finishes after that is applied at the next tick
(late). What is in flight is saved with each snapshot (`state()`) so that a resumed engine re-queues or
re-runs exactly those runs (`start(resumed=...)`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from django.db import close_old_connections, connections

from consciousness import frames
from consciousness.engine import TICK_FIGURES
from consciousness.groups import ENGINE_PROCESS_CANCEL, ENGINE_PROCESSES
from consciousness.health import database_fault
from consciousness.metrics import DATABASE_ERRORS, run_observe
from processes import selectors, services
from processes.inflight import MANUAL, InFlight, Pending
from processes.models import ProcessRun
from processes.registry import analysis_spec
from processes.sandbox import Execution, Outcome, Runner
from processes.triggers import IMPACT_DELAY_DEFAULT

logger = logging.getLogger(__name__)

CONTEXT_WINDOW = 128
POLL_S = 1.0
PRUNE_EVERY_S = 600.0
SHUTDOWN_GRACE_S = 2.0  # for a cancelled script to die and its row to be written
MOODS_KEPT = 4096
INTERRUPTED = "interrupted by a shutdown; it runs again, on the same tick, at the next start"

# What a request may carry besides parameters, seed and context (an analysis spec's `inputs`), each read
# from the database when the run starts, as of the run's tick.
INPUTS: dict[str, Callable[..., Any]] = {"patterns": selectors.patterns_recent}


def run_seed(*, script: str, parameters: dict, tick_number: int) -> int:
    """Same script, parameters and engine tick: same seed, hence the same result."""
    digest = hashlib.sha256(json.dumps([script, parameters, tick_number], sort_keys=True).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def context_summary(context: dict) -> dict:
    """What a run's record keeps of the context (the full activity history is large and in the tick log)."""
    return {k: context[k] for k in ("tick_number", *TICK_FIGURES) if k in context}


class ProcessDispatcher:
    """Claims and executes runs; what it needs of the engine is handed down as callables.

    `context(window, at=None)` is the engine's recent history (as of tick `at`), `add_impact(mapping, due=D)`
    queues a completed run's impact for tick D (ValueError if unusable), `set_active(names)` says which
    scripts are in flight, `publish(message)` sends an outbound stream message, `now()` is the engine's tick.
    """

    def __init__(
        self,
        *,
        runner: Runner,
        context: Callable[..., dict],
        add_impact: Callable[..., None],
        set_active: Callable[[tuple[str, ...]], None],
        publish: Callable[[dict], None],
        max_concurrent: int,
        impact_delay: int = IMPACT_DELAY_DEFAULT,
        epoch: uuid.UUID | None = None,
        now: Callable[[], int] | None = None,
        run_retention: timedelta | None = None,
    ) -> None:
        self.run_retention = run_retention  # finished runs older than this are pruned (None: kept)
        self._pruned_at = float("-inf")
        self.runner = runner
        self.context = context
        self.add_impact = add_impact
        self.set_active = set_active
        self.publish = publish
        self.max_concurrent = max_concurrent
        self.impact_delay = impact_delay
        self.epoch = epoch
        self.now = now or (lambda: self.context(1)["tick_number"])
        self.running: dict[int, tuple[ProcessRun, asyncio.Event, asyncio.Task]] = {}
        self.inflight = InFlight()
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._closing = False  # no new runs start; a cancelled run goes back to the queue
        self._interrupted = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dawn-processes")
        self._contexts: dict[int, dict] = {}  # contexts captured when a rule fired, by run id
        self._moods: dict[int, str] = {}  # the mood of recent ticks (the engine keeps none)
        self._enqueuing: set[asyncio.Task] = set()
        # impacts applied whose row does not say so yet, by process id: saved with the snapshot until it does,
        # so that a kill between the flush of the applying tick and the row's write loses no record
        self._unrecorded: dict[str, dict] = {}

    async def db(self, fn: Callable[..., Any], /, **kwargs: Any) -> Any:
        def call() -> Any:
            close_old_connections()
            return fn(**kwargs)

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def _prune(self) -> None:
        self._pruned_at = asyncio.get_running_loop().time()
        if self.run_retention is None:
            return
        removed = await self.db(services.runs_prune, retention=self.run_retention)
        if removed:
            logger.info("pruned %d finished runs older than %s", removed, self.run_retention)

    async def start(self, *, resumed: Mapping | None = None) -> None:
        """Reconcile the runs with the engine (`resumed`: what the snapshot saved of `state()`), then dispatch."""
        await self._prune()
        tick = self.now()
        pending = list((resumed or {}).get("pending", ()))
        applied = list((resumed or {}).get("applied", ()))
        outcome = await self.db(
            services.runs_resume, epoch=self.epoch, tick_number=tick, pending=pending, applied=applied
        )
        if outcome.abandoned:
            logger.warning("%d runs left running, or of another engine run: marked abandoned", outcome.abandoned)
        if outcome.superseded or outcome.rerun or outcome.reclaimed:
            logger.info(
                "resumed at tick %d: %d runs of later ticks superseded, %d in flight, %d to run again, "
                "%d back in the queue",
                tick, outcome.superseded, len(outcome.inflight), len(outcome.rerun), outcome.reclaimed,
            )
        self._moods = await self.db(selectors.tick_moods, since=tick - CONTEXT_WINDOW * 2, until=tick)
        for row in outcome.inflight:
            entry = self.inflight.add(self._entry_of(row))
            if row.pk in {r.pk for r in outcome.rerun}:
                await self._context_keep(row, entry)
            else:
                entry.done.set()
                if row.status == ProcessRun.Status.COMPLETED and row.consciousness_impact:
                    self._feed_back(row, entry)
        self._refresh_active()
        await self.runner.start()
        self._wake.set()  # the queue as it stands, at once
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="dawn-process-dispatcher")

    def _entry_of(self, run: ProcessRun) -> Pending:
        return Pending(
            script=run.script, trigger=run.trigger, tick=run.tick_number, due=run.impact_due_tick,
            run_id=run.pk, process_id=run.process_id,
        )

    async def _context_keep(self, run: ProcessRun, entry: Pending) -> None:
        """Rebuild, now, the context of a run to execute again: later ticks push it out of the history."""
        try:
            self._contexts[run.pk] = self._context_at(run.tick_number)
        except ValueError as exc:
            await self.db(services.run_abandon, run=run, reason=f"cannot run again on its own tick: {exc}")
            entry.done.set()

    def _context_at(self, tick: int) -> dict:
        context = self.context(CONTEXT_WINDOW, at=tick)
        if "mood" not in context and tick in self._moods:
            context["mood"] = self._moods[tick]
        return context

    def wake(self) -> None:
        self._wake.set()

    def handlers(self) -> dict[str, Callable[[dict], None]]:
        """The engine messages the dispatcher answers, for the engine inbox to route to it."""
        return {ENGINE_PROCESSES: lambda message: self.wake(), ENGINE_PROCESS_CANCEL: lambda message: self.cancel(message.get("run"))}

    def enqueue(self, *, script: str, trigger: str, tick: int | None = None) -> None:
        """Queue an auto-triggered run of tick `tick` (the engine's now) without blocking the tick."""
        if self._closing:
            return
        context = self.context(CONTEXT_WINDOW)
        tick = context["tick_number"] if tick is None else tick
        entry = self.inflight.add(Pending(script=script, trigger=trigger, tick=tick, due=tick + self.impact_delay))
        task = asyncio.get_running_loop().create_task(self._enqueue(entry, context))
        self._enqueuing.add(task)
        task.add_done_callback(self._enqueuing.discard)
        self._refresh_active()

    async def _enqueue(self, entry: Pending, context: dict) -> None:
        try:
            run = await self.db(
                services.run_create, script=entry.script, trigger=entry.trigger, wake=False,
                tick_number=entry.tick, impact_due_tick=entry.due, epoch=self.epoch,
            )
        except Exception:
            logger.exception("could not queue %s for %s", entry.script, entry.trigger)
            entry.done.set()
            return
        entry.run_id, entry.process_id = run.pk, run.process_id
        self._contexts[run.pk] = context
        self.wake()

    def cancel(self, run_id: object) -> None:
        """Stop the running run `run_id` (an id that is not running is ignored)."""
        entry = self.running.get(run_id)
        if entry is not None:
            entry[1].set()

    async def _loop(self) -> None:
        while not self._closing:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
            try:
                async with asyncio.timeout(POLL_S):
                    await self._wake.wait()
            except TimeoutError:
                pass
            if self._closing:
                return
            self._wake.clear()
            try:
                if asyncio.get_running_loop().time() - self._pruned_at >= PRUNE_EVERY_S:
                    await self._prune()
                await self._fill()
                await self._reap()
            except Exception as exc:
                DATABASE_ERRORS.labels(component="dispatcher").inc()
                fault = database_fault(exc)
                if fault is not None:  # an outage, not a bug: one line per poll, no traceback
                    logger.warning("process dispatcher could not claim runs: database %s (%r)", fault, exc)
                else:
                    logger.exception("process dispatcher could not claim runs")

    async def _fill(self) -> None:
        while not self._closing and len(self.running) < self.max_concurrent:
            run = await self.db(
                services.run_claim_next, tick_number=self.now(), impact_delay=self.impact_delay, epoch=self.epoch
            )
            if run is None:
                return
            entry = self.inflight.by_run(run.pk)
            if entry is None:  # a manual run, claimed now
                entry = self.inflight.add(self._entry_of(run))
            if self._closing:  # close() came while the claim was under way
                await self.db(services.run_requeue, run=run, reason=INTERRUPTED)
                return
            cancel = asyncio.Event()
            execution = self._execute(run, cancel, entry)
            task = asyncio.get_running_loop().create_task(execution, name=f"run:{run.process_id}")
            self.running[run.pk] = (run, cancel, task)
            self._refresh_active()

    async def _reap(self) -> None:
        """Runs in flight that finished without being claimed here (cancelled while queued) are done."""
        unclaimed = [e for e in self.inflight.entries if not e.done.is_set() and e.run_id is not None
                     and e.run_id not in self.running and e.due <= self.now() + 1]
        if unclaimed:
            finished = await self.db(selectors.runs_finished, ids=[e.run_id for e in unclaimed])
            for entry in unclaimed:
                if entry.run_id in finished:
                    entry.done.set()
            self._refresh_active()

    def _refresh_active(self) -> None:
        now = self.now()
        self.inflight.retire(now)
        self.set_active(self.inflight.active(now + 1))

    async def _execute(self, run: ProcessRun, cancel: asyncio.Event, entry: Pending) -> None:
        try:
            context = self._contexts.pop(run.pk, None) or self._context_at(run.tick_number)
            seed = run_seed(script=run.script, parameters=run.parameters, tick_number=context["tick_number"])
            # an auto-triggered run reads them as of its tick (reproducible); a manual one as they are now
            as_of = {} if run.trigger == MANUAL else {"at": run.tick_number, "epoch": self.epoch}
            inputs = {name: await self.db(INPUTS[name], **as_of) for name in analysis_spec(run.script).inputs}
            summary = context_summary(context)
            await self.db(services.run_started, run=run, context=summary, seed=seed, tick_number=context["tick_number"])
            self.publish(frames.process_message(run.as_process_output()))
            if run.cancel_requested:
                cancel.set()

            def on_line(line: str) -> None:
                self.publish(frames.process_output_message(process_id=run.process_id, line=line))

            request = {"parameters": run.parameters, "seed": seed, "context": context, **inputs}
            execution = await self.runner.execute(run.script, request, on_line=on_line, cancel=cancel)
        except Exception as exc:
            logger.exception("run %s could not be executed", run.process_id)
            execution = Execution(
                status=Outcome.FAILED, result=None, exit_code=None, signal=None, reason=f"runner error: {exc!r}",
                started_at=0.0, ended_at=0.0, pid=None,
            )
        try:
            if self._closing and execution.status == Outcome.CANCELLED and not run.cancel_requested:
                await self.db(services.run_requeue, run=run, reason=INTERRUPTED)
                return
            run = await self.db(services.run_finished, run=run, execution=execution)
            run_observe(script=run.script, started_at=execution.started_at, ended_at=execution.ended_at)
            if run.status == ProcessRun.Status.COMPLETED and run.consciousness_impact:
                self._feed_back(run, entry)
            self.publish(frames.process_message(run.as_process_output()))
        except Exception:
            DATABASE_ERRORS.labels(component="dispatcher").inc()
            logger.exception("run %s could not be recorded", run.process_id)
        finally:
            entry.done.set()
            self.running.pop(run.pk, None)
            self._refresh_active()
            self.wake()

    def _feed_back(self, run: ProcessRun, entry: Pending) -> None:
        due = run.impact_due_tick if run.impact_due_tick is not None else 0
        try:
            self.add_impact({**run.consciousness_impact, "source": run.process_id}, due=due)
        except ValueError as exc:
            logger.warning("run %s has an unusable impact (%s): ignored", run.process_id, exc)
            return
        entry.impact = True

    def after_tick(self, tick_number: int, sources: Sequence[str], *, mood: str | None = None) -> None:
        """After tick `tick_number`: record (off the tick) which runs' impacts it applied, forget the runs it
        completed, and list those in flight for the next one."""
        if mood is not None:
            self._moods[tick_number] = mood
            self._moods.pop(tick_number - MOODS_KEPT, None)
        for source in sources:
            if (entry := self.inflight.by_process(source)) is not None:
                self._unrecorded[source] = {**entry.as_state(), "applied": tick_number}
        self.inflight.applied(set(sources))
        self._refresh_active()
        for source in sources:
            task = asyncio.get_running_loop().create_task(self._record_applied(source, tick_number))
            self._enqueuing.add(task)
            task.add_done_callback(self._enqueuing.discard)

    async def _record_applied(self, source: str, tick_number: int) -> None:
        try:
            await self.db(services.run_applied, process_id=source, tick_number=tick_number)
        except Exception as exc:  # the snapshot keeps the record: the next start writes it
            DATABASE_ERRORS.labels(component="dispatcher").inc()
            logger.error("could not record that tick %d applied run %s: %r", tick_number, source, exc)
            return
        self._unrecorded.pop(source, None)

    async def due(self, tick_number: int, *, patience: float) -> None:
        """Wait until every run due at or before `tick_number` has finished (batch runs: then each impact
        applies at its due tick). Gives up, with a warning, after `patience` seconds without any finishing."""
        while not self._closing and (waiting := self.inflight.waiting(tick_number)):
            events = (self._interrupted, *(entry.done for entry in waiting))
            futures = [asyncio.ensure_future(event.wait()) for event in events]
            done, left = await asyncio.wait(futures, timeout=patience, return_when=asyncio.FIRST_COMPLETED)
            for future in left:
                future.cancel()
            if not done:
                logger.warning("%d runs due at tick %d did not finish in %.0f s: their impacts will be late",
                               len(waiting), tick_number, patience)
                return

    def state(self) -> dict:
        """What must survive with the engine's snapshot: the runs in flight (saved as of the same tick), and
        the impacts applied whose rows may not say so yet."""
        return {"pending": self.inflight.state(), "applied": list(self._unrecorded.values())}

    def interrupt(self) -> None:
        """Shutting down: start no run, and let a batch run's wait for due runs end."""
        self._closing = True
        self._interrupted.set()
        self._wake.set()

    async def close(self) -> None:
        """Stop at once: queued runs stay queued; running ones are stopped and go back to the queue, so the
        next start runs them again on their own tick."""
        self._closing = True
        self._wake.set()
        if self._enqueuing:
            await asyncio.wait(set(self._enqueuing), timeout=SHUTDOWN_GRACE_S)
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        for _run, cancel, _task in list(self.running.values()):
            cancel.set()
        tasks = [task for _run, _cancel, task in self.running.values()]
        if tasks:
            await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE_S)
        await self.runner.close()
        await asyncio.get_running_loop().run_in_executor(self._executor, connections.close_all)
        self._executor.shutdown(wait=True)
