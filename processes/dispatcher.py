"""ProcessDispatcher: runs queued ProcessRuns inside runtick and feeds their results back to the engine.

The database row is the record and the queue: any serving process may queue a run and send a wake-up
through the channel layer; this dispatcher (one per engine) claims runs in order, at most
`max_concurrent` at a time, and polls as well, so a lost wake-up only delays a run.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from django.db import close_old_connections, connections

from consciousness import frames
from consciousness.engine import TICK_FIGURES
from consciousness.groups import ENGINE_PROCESS_CANCEL, ENGINE_PROCESSES
from consciousness.metrics import DATABASE_ERRORS, run_observe
from processes import selectors, services
from processes.models import ProcessRun
from processes.registry import analysis_spec
from processes.sandbox import Execution, Outcome, Runner

logger = logging.getLogger(__name__)

CONTEXT_WINDOW = 128
POLL_S = 1.0
PRUNE_EVERY_S = 600.0
SHUTDOWN_GRACE_S = 5.0

# What a request may carry besides parameters, seed and context (an analysis spec's `inputs`), each read
# from the database when the run starts.
INPUTS: dict[str, Callable[[], Any]] = {"patterns": selectors.patterns_recent}


def run_seed(*, script: str, parameters: dict, tick_number: int) -> int:
    """Same script, parameters and engine tick: same seed, hence the same result."""
    digest = hashlib.sha256(json.dumps([script, parameters, tick_number], sort_keys=True).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def context_summary(context: dict) -> dict:
    """What a run's record keeps of the context (the full activity history is large and in the tick log)."""
    return {k: context[k] for k in ("tick_number", *TICK_FIGURES) if k in context}


class ProcessDispatcher:
    """Claims and executes runs; what it needs of the engine is handed down as callables.

    `context(window)` is the engine's recent history for a run, `add_impact(mapping)` queues a completed
    run's impact for the next tick (ValueError if unusable), `set_active(names)` says which scripts run,
    `publish(message)` sends an outbound stream message.
    """

    def __init__(
        self,
        *,
        runner: Runner,
        context: Callable[[int], dict],
        add_impact: Callable[[dict], None],
        set_active: Callable[[tuple[str, ...]], None],
        publish: Callable[[dict], None],
        max_concurrent: int,
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
        self.running: dict[int, tuple[ProcessRun, asyncio.Event, asyncio.Task]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._closing = False  # no new runs start
        self._stopping = False  # the claiming loop ends
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dawn-processes")
        self._contexts: dict[int, dict] = {}  # contexts captured when a rule fired, by run id
        self._enqueuing: set[asyncio.Task] = set()

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

    async def start(self) -> None:
        await self._prune()
        abandoned = await self.db(services.runs_abandon_running)
        if abandoned:
            logger.warning("%d runs were running when the last runner stopped: marked abandoned", abandoned)
        await self.runner.start()
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="dawn-process-dispatcher")

    def wake(self) -> None:
        self._wake.set()

    def handlers(self) -> dict[str, Callable[[dict], None]]:
        """The engine messages the dispatcher answers, for the engine inbox to route to it."""
        return {ENGINE_PROCESSES: lambda message: self.wake(), ENGINE_PROCESS_CANCEL: lambda message: self.cancel(message.get("run"))}

    def enqueue(self, *, script: str, trigger: str) -> None:
        """Queue an auto-triggered run without blocking the tick: the context is the state of this tick."""
        if self._closing:
            return
        context = self.context(CONTEXT_WINDOW)
        task = asyncio.get_running_loop().create_task(self._enqueue(script, trigger, context))
        self._enqueuing.add(task)
        task.add_done_callback(self._enqueuing.discard)

    async def _enqueue(self, script: str, trigger: str, context: dict) -> None:
        try:
            run = await self.db(services.run_create, script=script, trigger=trigger, wake=False)
        except Exception:
            logger.exception("could not queue %s for %s", script, trigger)
            return
        self._contexts[run.pk] = context
        self.wake()

    def cancel(self, run_id: object) -> None:
        """Stop the running run `run_id` (an id that is not running is ignored)."""
        entry = self.running.get(run_id)
        if entry is not None:
            entry[1].set()

    async def _loop(self) -> None:
        while not self._stopping:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
            try:
                async with asyncio.timeout(POLL_S):
                    await self._wake.wait()
            except TimeoutError:
                pass
            if self._stopping:
                return
            self._wake.clear()
            try:
                if asyncio.get_running_loop().time() - self._pruned_at >= PRUNE_EVERY_S:
                    await self._prune()
                await self._fill()
            except Exception:
                DATABASE_ERRORS.labels(component="dispatcher").inc()
                logger.exception("process dispatcher could not claim runs")

    async def _fill(self) -> None:
        while not self._closing and len(self.running) < self.max_concurrent:
            run = await self.db(services.run_claim_next)
            if run is None:
                return
            cancel = asyncio.Event()
            task = asyncio.get_running_loop().create_task(self._execute(run, cancel), name=f"run:{run.process_id}")
            self.running[run.pk] = (run, cancel, task)
            self._refresh_active()

    def _refresh_active(self) -> None:
        self.set_active(tuple(sorted({run.script for run, _cancel, _task in self.running.values()})))

    async def _execute(self, run: ProcessRun, cancel: asyncio.Event) -> None:
        try:
            context = self._contexts.pop(run.pk, None) or self.context(CONTEXT_WINDOW)
            seed = run_seed(script=run.script, parameters=run.parameters, tick_number=context["tick_number"])
            inputs = {name: await self.db(INPUTS[name]) for name in analysis_spec(run.script).inputs}
            await self.db(services.run_started, run=run, context=context_summary(context), seed=seed, tick_number=context["tick_number"])
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
            run = await self.db(services.run_finished, run=run, execution=execution)
            run_observe(script=run.script, started_at=execution.started_at, ended_at=execution.ended_at)
            if run.status == ProcessRun.Status.COMPLETED and run.consciousness_impact:
                self._feed_back(run)
            self.publish(frames.process_message(run.as_process_output()))
        except Exception:
            DATABASE_ERRORS.labels(component="dispatcher").inc()
            logger.exception("run %s could not be recorded", run.process_id)
        finally:
            self.running.pop(run.pk, None)
            self._refresh_active()
            self.wake()

    def _feed_back(self, run: ProcessRun) -> None:
        try:
            self.add_impact({**run.consciousness_impact, "source": run.process_id})
        except ValueError as exc:
            logger.warning("run %s has an unusable impact (%s): ignored", run.process_id, exc)

    def after_tick(self, tick_number: int, sources: Sequence[str]) -> None:
        """Record (off the tick) that tick `tick_number` applied the impacts of the runs `sources`."""
        for source in sources:
            task = asyncio.get_running_loop().create_task(
                self.db(services.run_applied, process_id=source, tick_number=tick_number)
            )
            self._enqueuing.add(task)
            task.add_done_callback(self._enqueuing.discard)

    async def close(self) -> None:
        """Let queued and running runs finish for a few seconds, then cancel what still runs.

        Runs still queued after that stay queued: the next runtick executes them.
        """
        if self._enqueuing:
            await asyncio.wait(set(self._enqueuing), timeout=SHUTDOWN_GRACE_S)
        if self._task is not None:
            self._stopping = True
            self._wake.set()
            await asyncio.gather(self._task, return_exceptions=True)
        deadline = asyncio.get_running_loop().time() + SHUTDOWN_GRACE_S
        while asyncio.get_running_loop().time() < deadline:
            await self._fill()
            tasks = [task for _run, _cancel, task in self.running.values()]
            if not tasks:
                break
            await asyncio.wait(tasks, timeout=max(0.0, deadline - asyncio.get_running_loop().time()), return_when=asyncio.FIRST_COMPLETED)
        self._closing = True
        for _run, cancel, _task in list(self.running.values()):
            cancel.set()
        tasks = [task for _run, _cancel, task in self.running.values()]
        if tasks:
            await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE_S)
        await self.runner.close()
        await asyncio.get_running_loop().run_in_executor(self._executor, connections.close_all)
        self._executor.shutdown(wait=True)
