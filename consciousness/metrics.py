"""Every Prometheus metric DAWN exports, defined once (prometheus-client, the process's default registry).

Counters that the running objects already keep (the loop's ticks and skipped slots, the history writer's
flushed ticks and failures, the hub's clients and evictions, the runs in the database) are read at scrape
time by the collectors below; the histograms and counters with no such source are observed where the
event happens. Each serving process and runtick expose their own (see the README's "Metrics").
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from django.db.models import Count
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

_TICK_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)

TICK_LATENESS = Histogram(
    "dawn_tick_lateness_seconds", "How late each tick started after its deadline.", buckets=_TICK_BUCKETS
)
STEP_SECONDS = Histogram("dawn_engine_step_seconds", "Time the engine took to compute one tick.", buckets=_TICK_BUCKETS)
FLUSH_SECONDS = Histogram(
    "dawn_history_flush_seconds", "Time one history flush (ticks and snapshot, one transaction) took.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
FLUSH_ROWS = Histogram(
    "dawn_history_flush_rows", "Ticks written by one history flush.", buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
)
RUN_SECONDS = Histogram(
    "dawn_run_duration_seconds", "Wall time of finished analysis runs, by script.", ["script"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0),
)
FRAMES_SENT = Counter("dawn_stream_frames_sent", "Frames written to stream sockets, by protocol.", ["protocol"])
FRAMES_DROPPED = Counter(
    "dawn_stream_frames_dropped", "Frames a slow socket skipped (replaced by a newer one), by protocol.", ["protocol"]
)
STIMULI = Counter("dawn_stimuli", "Stimuli that reached the engine, by outcome (accepted or rejected).", ["outcome"])
DATABASE_ERRORS = Counter(
    "dawn_database_errors", "Failed database operations outside a request, by component.", ["component"]
)
LAYER_ERRORS = Counter(
    "dawn_channel_layer_errors",
    "Failed channel-layer sends, receives and background tasks, by operation.",
    ["operation"],
)

for _outcome in ("accepted", "rejected"):
    STIMULI.labels(outcome=_outcome)
for _operation in ("send", "receive", "background"):
    LAYER_ERRORS.labels(operation=_operation)
for _component in ("history", "dispatcher", "metrics", "control"):
    DATABASE_ERRORS.labels(component=_component)


def run_observe(*, script: str, started_at: float, ended_at: float) -> None:
    """A finished run's wall time (runs that never started have none)."""
    if started_at and ended_at >= started_at:
        RUN_SECONDS.labels(script=script).observe(ended_at - started_at)


class EngineCollector(Collector):
    """The tick loop's and the history writer's own counters, read at scrape time from the attached runtime."""

    def __init__(self) -> None:
        self.loop: Any = None
        self.history: Any = None

    def attach(self, *, loop: Any, history: Any) -> None:
        self.loop, self.history = loop, history

    def detach(self) -> None:
        self.loop = self.history = None

    def collect(self) -> Iterator[Any]:
        loop, history = self.loop, self.history
        if loop is None or history is None:
            return
        for kind, name, documentation, value in (
            (CounterMetricFamily, "dawn_ticks", "Ticks computed by this runtick.", loop.ticks_done),
            (CounterMetricFamily, "dawn_tick_slots_skipped", "Tick slots skipped: a tick ran late.", loop.slots_skipped),
            (GaugeMetricFamily, "dawn_tick_number", "The newest tick's number.", loop.engine.state.tick_number),
            (GaugeMetricFamily, "dawn_engine_paused", "1 while the engine is paused (control), else 0.", int(loop.paused)),
            (CounterMetricFamily, "dawn_history_flushed_ticks", "Ticks persisted by this runtick.", history.flushed_ticks),
            (CounterMetricFamily, "dawn_history_flush_failures", "History flushes that failed (retried).", history.failures),
            (GaugeMetricFamily, "dawn_history_buffered_ticks", "Ticks not persisted yet (waiting or being written).",
             history.backlog),
            (CounterMetricFamily, "dawn_history_dropped_ticks",
             "Unpersisted ticks dropped, the oldest first, past persistence.max_backlog.", history.dropped_ticks),
        ):
            yield kind(name, documentation, value=value)


class StreamCollector(Collector):
    """The serving process's stream hub: connected clients and slow-client evictions."""

    def __init__(self) -> None:
        self.hub: Callable[[], Any] = lambda: None  # set by the ASGI application: the hub of this process

    def collect(self) -> Iterator[Any]:
        hub = self.hub()
        if hub is None:
            return
        yield GaugeMetricFamily("dawn_stream_clients", "Stream sockets connected to this process.", len(hub.clients))
        yield CounterMetricFamily("dawn_stream_evictions", "Slow stream clients closed.", value=hub.evicted)


class RunsCollector(Collector):
    """Analysis runs by script and status, counted in the database at scrape time (where runtick runs)."""

    def __init__(self) -> None:
        self.model: Any = None  # set by the runtime: processes' ProcessRun

    def collect(self) -> Iterator[Any]:
        if self.model is None:
            return
        family = GaugeMetricFamily(
            "dawn_runs", "Analysis runs in the database, by script and status.", labels=["script", "status"]
        )
        try:
            rows = list(self.model.objects.order_by().values("script", "status").annotate(n=Count("id")))
        except Exception as exc:  # a scrape must not fail with the database
            DATABASE_ERRORS.labels(component="metrics").inc()
            logger.warning("metrics could not count the runs: %r", exc)
            rows = []
        for row in rows:
            family.add_metric([row["script"], row["status"]], row["n"])
        yield family


ENGINE = EngineCollector()
STREAM = StreamCollector()
RUNS = RunsCollector()
for _collector in (ENGINE, STREAM, RUNS):
    REGISTRY.register(_collector)


def metrics_text() -> tuple[bytes, str]:
    """This process's metrics in the Prometheus text format, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
