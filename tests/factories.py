"""Test data made by the real engine, so API tests see ticks exactly as runtick would persist them."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

from channels.db import database_sync_to_async

from consciousness import services
from consciousness.engine import Engine, EngineConfig, StepInputs
from consciousness.persistence import HistoryWriter

ENGINE_CONFIG = EngineConfig.from_mapping({"seed": 3})


def ticks_make(count: int, *, seed: int = 3, start_time: float | None = None, period: float = 0.1) -> list[dict]:
    """Run a fresh engine for `count` ticks and return them in the Tick Data Format."""
    engine = Engine(ENGINE_CONFIG, seed=seed)
    start = time.time() - count * period if start_time is None else start_time
    return [engine.advance(StepInputs(timestamp=start + i * period)).tick for i in range(count)]


def history_make(count: int, *, seed: int = 3, start_time: float | None = None, period: float = 0.1) -> list[dict]:
    """Persist `count` engine ticks with their snapshot, as runtick's flush does."""
    engine = Engine(ENGINE_CONFIG, seed=seed)
    start = time.time() - count * period if start_time is None else start_time
    ticks = [engine.advance(StepInputs(timestamp=start + i * period)).tick for i in range(count)]
    services.history_flush(
        ticks=ticks, snapshot=engine.snapshot(), epoch=uuid.uuid4(), seed=seed, tick_number=engine.state.tick_number
    )
    return ticks


class Ticking:
    """A real engine and the writer that persists its ticks, fed by hand instead of by the loop."""

    def __init__(self, *, max_backlog: int = 1000) -> None:
        self.engine = Engine(ENGINE_CONFIG, seed=5)
        self.writer = HistoryWriter(
            engine=self.engine, epoch=uuid.uuid4(), seed=5, flush_interval=0.0, retention=timedelta(hours=1),
            prune_interval=3600.0, max_backlog=max_backlog,
        )
        self.sinks = [self.writer]  # the loop's sinks: more may be added (a StreamPublisher)

    async def ticks(self, count: int) -> None:
        for _ in range(count):
            result = self.engine.advance(StepInputs(timestamp=time.time()))
            for sink in self.sinks:
                await sink(result)

    async def flushed(self) -> None:
        """The write under way is over (and its outcome dealt with)."""
        await self.writer._settle()

    def thread(self, function):
        """Run `function` on the writer's own database thread."""
        return self.writer._executor.submit(function).result()


def sync(function):
    """`function` (a database read) from an async test: in a thread, its connection closed afterwards."""
    return database_sync_to_async(function)
