"""EngineRuntime: what `runtick` runs: lock, resume, tick loop, persistence, broadcast, signals, embedded server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import signal
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import uvloop
from channels.layers import get_channel_layer
from django.conf import settings
from prometheus_client import start_http_server

from consciousness import health, metrics, selectors, services
from consciousness.access import is_loopback
from consciousness.engine import Engine, EngineConfig, StepResult
from consciousness.control import Controller
from consciousness.groups import ENGINE_CONTROL, StreamPublisher
from consciousness.hub import stream_hub, stream_hub_latest
from consciousness.inbox import EngineInbox
from consciousness.lock import EngineLock, EngineLocked
from consciousness.loop import TickLoop
from consciousness.models import EngineSnapshot
from consciousness.persistence import HistoryWriter
from dawn_site.progress import ProgressReport
from dawn_site.server import embedded_server
from processes.dispatcher import ProcessDispatcher
from processes.models import ProcessRun
from processes.sandbox.confine import protections, serving_process_harden
from processes.registry import script_specs
from processes.sandbox import Runner
from processes.triggers import TriggerRules

logger = logging.getLogger(__name__)


UNTHROTTLED_TICKS_PER_S_MAX = 100_000
PROCESSES_STATE = "processes"  # the snapshot's key for what the tick rules and the pending runs remember
BATCH_WAIT_SLACK_S = 10.0  # beyond processes.timeout, how long a batch run waits for a due run to finish


class RuntimeRefused(Exception):
    """runtick cannot start as asked; the message says why and what to do."""


@dataclass(frozen=True)
class RuntimeOptions:
    rate: float
    seed: int | None = None  # None: the stored run's seed, or config.yaml's for a new run
    max_ticks: int | None = None
    until: int | None = None
    serve: bool = True
    host: str = "127.0.0.1"
    port: int = 8000
    processes: bool = True
    reset: bool = False
    progress: float = 30.0  # seconds between progress lines; 0: none
    metrics_port: int | None = None  # --no-serve: where /metrics is served (the workers serve their own)


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop (pinned): its transports write a frame to a socket for a
    fraction of the standard loop's cost, and the fan-out writes one per client per tick."""
    return uvloop.new_event_loop


def engine_resume(cfg: EngineConfig, *, seed: int | None, reset: bool, max_discard: int) -> tuple[Engine, uuid.UUID, int]:
    """The engine as the last snapshot left it, or a new one; returns (engine, epoch, seed).

    A snapshot row whose columns disagree with the state it holds is refused, never trusted; ticks
    persisted beyond the snapshot (none should exist: the flush is atomic) are discarded only if they
    are at most one flush interval's worth (`max_discard`), and the range is logged.
    """
    if reset:
        services.history_reset()
    snapshot = selectors.snapshot_latest()
    if snapshot is None:
        seed = cfg.seed if seed is None else seed
        return Engine(cfg, seed=seed), uuid.uuid4(), seed
    if seed is not None and seed != snapshot.seed:
        raise RuntimeRefused(
            f"the database holds a run with seed {snapshot.seed} at tick {snapshot.tick_number}; "
            f"--seed {seed} would mix two runs. Drop --seed to resume it, or add --reset to start over."
        )
    try:
        snapshot_check(snapshot)
        engine = Engine.from_snapshot(snapshot.state, cfg)
    except ValueError as exc:
        raise RuntimeRefused(f"cannot resume from the stored snapshot ({exc}); add --reset to start a new run") from None
    beyond = selectors.ticks_between(since=snapshot.tick_number + 1)
    count = beyond.count()
    if count > max_discard:
        raise RuntimeRefused(
            f"the database holds {count} ticks beyond the snapshot at tick {snapshot.tick_number}, more than one "
            f"flush interval ({max_discard}); refusing to discard them. Add --reset to start a new run."
        )
    if count:
        last = beyond.last().tick_number
        services.history_discard_after(tick_number=snapshot.tick_number)
        logger.warning("discarded ticks %d..%d persisted beyond the snapshot (%d ticks)", snapshot.tick_number + 1, last, count)
    return engine, snapshot.epoch, snapshot.seed


def snapshot_check(snapshot: EngineSnapshot) -> None:
    """ValueError unless the row's tick number, epoch and seed are those of the state it stores."""
    state = snapshot.state if isinstance(snapshot.state, dict) else {}
    inner = state.get("state") if isinstance(state.get("state"), dict) else {}
    stored = {"tick number": inner.get("tick_number"), "seed": state.get("seed"), "epoch": state.get("epoch")}
    expected = {"tick number": snapshot.tick_number, "seed": snapshot.seed, "epoch": str(snapshot.epoch)}
    for what, value in expected.items():
        if stored[what] != value:
            raise ValueError(f"the row says {what} {value!r} but its state holds {stored[what]!r}")


def _local_clients() -> int | None:
    """Stream sockets on this process, or None where nothing serves the stream (--no-serve)."""
    hub = stream_hub_latest()
    return len(hub.clients) if hub is not None else None


def listen_socket(host: str, port: int) -> socket.socket:
    """Bind before anything starts, so a busy port is a clear error and not a half-started engine."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise RuntimeRefused(f"cannot resolve host {host!r}: {exc.strerror}") from None
    family, kind, proto, _name, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise RuntimeRefused(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


class EngineRuntime:
    """Everything one `runtick` process does, from start-up to a clean exit."""

    def __init__(self, options: RuntimeOptions) -> None:
        self.options = options
        self.config = settings.DAWN_CONFIG
        self.engine_config = EngineConfig.from_mapping(self.config["consciousness"])
        self.lock = EngineLock()
        self.inbox = EngineInbox(next_tick=lambda: self.engine.state.tick_number + 1)
        self.loop: TickLoop | None = None
        self.dispatcher: ProcessDispatcher | None = None
        self.history: HistoryWriter | None = None
        self.server = None
        self.signals = 0
        self.resumed_processes: dict | None = None  # what the snapshot saved of the rules and pending runs

    def prepare(self) -> None:
        """Synchronous start-up: take the lock, resume the engine, bind the port (raises RuntimeRefused)."""
        # scripts (and any other process without CAP_SYS_PTRACE) cannot read this one's environment
        serving_process_harden()
        try:
            self.lock.acquire()
        except EngineLocked as exc:
            raise RuntimeRefused(str(exc)) from None
        try:
            self.engine, self.epoch, self.seed = engine_resume(
                self.engine_config,
                seed=self.options.seed,
                reset=self.options.reset,
                max_discard=math.ceil(self._ticks_per_second() * self.config["persistence"]["flush_interval"]) + 1,
            )
            snapshot = selectors.snapshot_latest()
            if snapshot is not None and isinstance(snapshot.state, dict):
                saved = snapshot.state.get(PROCESSES_STATE)
                self.resumed_processes = saved if isinstance(saved, dict) else None
            self.sock = listen_socket(self.options.host, self.options.port) if self.options.serve else None
            if self.options.metrics_port is not None:
                self._serve_metrics()
        except BaseException:
            self.lock.release()
            raise

    def _ticks_per_second(self) -> float:
        # unthrottled (--rate max): bounded by what the step can do, far below this
        return self.options.rate if math.isfinite(self.options.rate) else UNTHROTTLED_TICKS_PER_S_MAX

    def _on_signal(self, signum: int) -> None:
        self.signals += 1
        if self.signals > 1:
            logger.warning("second %s: exiting at once", signal.Signals(signum).name)
            os._exit(128 + signum)
        logger.info("%s: finishing the current tick, then saving and exiting", signal.Signals(signum).name)
        if self.loop is not None:
            self.loop.stop()
        if self.dispatcher is not None:
            self.dispatcher.interrupt()  # a batch run waiting for its due runs stops waiting

    async def run(self) -> int:
        """Run until stopped or a limit is reached; returns the number of ticks done."""
        aio = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            aio.add_signal_handler(signum, self._on_signal, signum)
        layer = get_channel_layer()
        inbox = self.inbox
        stream = StreamPublisher(
            layer, epoch=str(self.epoch), applied=lambda: inbox.applied, rate=self.options.rate,
            status=self._status,
        )
        processes = self.config["processes"]
        self.dispatcher = dispatcher = ProcessDispatcher(
            runner=Runner(script_specs(), cwd=settings.BASE_DIR),
            context=self.engine.context,
            add_impact=inbox.add_impact,
            set_active=inbox.set_active,
            publish=stream.event,
            max_concurrent=processes["max_concurrent"],
            impact_delay=processes["impact_delay"],
            epoch=self.epoch,
            now=lambda: self.engine.state.tick_number,
            run_retention=timedelta(hours=processes["retention_hours"]),
        )
        for kind, handler in dispatcher.handlers().items():
            inbox.on(kind, handler)
        process_sink, process_state = self._process_sink(dispatcher)
        persistence = self.config["persistence"]
        history = HistoryWriter(
            engine=self.engine,
            epoch=self.epoch,
            seed=self.seed,
            flush_interval=persistence["flush_interval"],
            retention=timedelta(hours=persistence["retention_hours"]),
            prune_interval=persistence["prune_interval"],
            max_backlog=persistence["max_backlog"],
            companions={PROCESSES_STATE: process_state},
        )
        self.history = history
        # the process sink first: the snapshot the history sink may take must include what this tick fired
        sinks = [process_sink, history, stream]
        # paused, the hubs hear the engine this often: well within stream.stale_after, so /health/ says paused
        heartbeat = min(1.0, self.config["stream"]["stale_after"] / 2)
        controller = Controller(stream=stream, epoch=self.epoch, heartbeat_s=heartbeat)
        inbox.on(ENGINE_CONTROL, controller.receive)

        self.loop = TickLoop(
            engine=self.engine,
            rate=self.options.rate,
            sinks=sinks,
            inputs=inbox.take,
            max_ticks=self.options.max_ticks,
            until=self.options.until,
            on_command=controller.on_command,
            on_hold=history.flush_soon,  # paused: persist the ticks so far with their snapshot, now
        )
        controller.attach(self.loop)
        metrics.ENGINE.attach(loop=self.loop, history=history)
        health.RUNTIME.attach(status=self._status)  # this process's /health/ reads it directly
        metrics.RUNS.model = ProcessRun
        progress = ProgressReport(loop=self.loop, history=history, clients=_local_clients)
        report = aio.create_task(progress.run(self.options.progress)) if self.options.progress > 0 else None
        beat = aio.create_task(controller.heartbeat(), name="dawn-control-heartbeat")
        serve_task = None
        try:
            await inbox.listen(layer)
            stream.start()  # the status report, for the workers' /health/
            await dispatcher.start(resumed=self.resumed_processes)
            if self.sock is not None:
                serve_task = await self._serve()
            logger.info(
                "engine epoch %s, seed %d, resuming after tick %d at %.3g Hz%s",
                self.epoch,
                self.seed,
                self.engine.state.tick_number,
                self.options.rate,
                f", serving http://{self.options.host}:{self.options.port}" if self.sock is not None else "",
            )
            logger.info("analysis scripts are confined: %s", "; ".join(protections()))
            if settings.DAWN_OPEN_WRITES and self.sock is not None and not is_loopback(self.sock.getsockname()[0]):
                logger.warning(
                    "DAWN_OPEN_WRITES is set but DAWN listens on %s: writes stay open to loopback clients only; "
                    "everyone else needs a user with the permission",
                    self.options.host,
                )
            if self._batch():  # the first tick may be due to apply a run the snapshot left in flight
                await dispatcher.due(self.engine.state.tick_number + 1, patience=self._batch_patience())
            return await self.loop.run()
        finally:
            if report is not None:
                report.cancel()
            beat.cancel()
            metrics.ENGINE.detach()
            health.RUNTIME.detach()
            await dispatcher.close()
            await history.close()
            await controller.close()
            await stream.close()
            await inbox.close()
            if serve_task is not None:
                await self._stop_serving(serve_task)
            for signum in (signal.SIGTERM, signal.SIGINT):
                aio.remove_signal_handler(signum)
            self.lock.release()
            logger.info(
                "stopped at tick %d: %d ticks persisted this run, %d slots skipped",
                self.engine.state.tick_number,
                history.flushed_ticks,
                self.loop.slots_skipped,
            )

    def _status(self) -> dict:
        """What this engine reports about itself: on /health/ here, and on the stream for the workers."""
        return {"persistence": self.history.status()}

    def _serve_metrics(self) -> None:
        # prometheus-client's own server, on a thread: runtick --no-serve has no HTTP server of its own
        try:
            start_http_server(self.options.metrics_port, addr=self.options.host)
        except OSError as exc:
            where = f"{self.options.host}:{self.options.metrics_port}"
            raise RuntimeRefused(f"cannot serve metrics on {where}: {exc.strerror}") from None
        logger.info("metrics on http://%s:%d/metrics", self.options.host, self.options.metrics_port)

    def _batch(self) -> bool:
        """Headless with an end or unthrottled: a batch run, exactly reproducible, so it waits for due runs."""
        options = self.options
        return not options.serve and (
            options.max_ticks is not None or options.until is not None or not math.isfinite(options.rate)
        )

    def _batch_patience(self) -> float:
        return self.config["processes"]["timeout"] + BATCH_WAIT_SLACK_S

    def _process_sink(self, dispatcher: ProcessDispatcher) -> tuple[Callable, Callable[[], dict]]:
        """The sink that, after each tick, records applied impacts and (unless --no-processes) fires the tick
        rules; and the state to save with each snapshot, which the next start resumes them from."""
        processes = self.config["processes"]
        saved = self.resumed_processes or {}
        rules_state = saved.get("rules") if isinstance(saved.get("rules"), dict) else None
        rules = TriggerRules(processes["auto_triggers"], state=rules_state) if self.options.processes else None
        inbox = self.inbox
        patience = self._batch_patience() if self._batch() else None

        async def process_sink(result: StepResult) -> None:
            number = result.state.tick_number
            applied = [impact.source for impact in inbox.taken_impacts]
            dispatcher.after_tick(number, applied, mood=result.tick["mood"])
            if rules is not None:
                for script, rule in rules.fire(result.tick):
                    dispatcher.enqueue(script=script, trigger=rule.label, tick=number)
            if patience is not None:
                await dispatcher.due(number + 1, patience=patience)

        def state() -> dict:
            return {"rules": rules.state() if rules is not None else None, **dispatcher.state()}

        return process_sink, state

    async def _serve(self) -> asyncio.Task:
        await stream_hub().start()
        self.server = embedded_server()
        task = asyncio.get_running_loop().create_task(self.server.serve(sockets=[self.sock]), name="dawn-http")
        while not self.server.started and not task.done():
            await asyncio.sleep(0.01)
        if task.done():
            task.result()  # raises what stopped the server
        return task

    async def _stop_serving(self, task: asyncio.Task) -> None:
        self.server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(task), 5)
        if not task.done():
            self.server.force_exit = True
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(task, 2)
        await stream_hub().stop()
