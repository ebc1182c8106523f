"""HistoryWriter: the tick loop's sink that persists ticks in batches, off the event loop."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.db import close_old_connections, connections

from consciousness import services
from consciousness.engine import Engine, StepResult
from consciousness.metrics import DATABASE_ERRORS, FLUSH_ROWS, FLUSH_SECONDS

logger = logging.getLogger(__name__)


class HistoryWriter:
    """Buffer ticks and write them, with the snapshot as of the last one, once per flush interval.

    Writes run on one dedicated thread (one database connection, in order). A failed write puts its
    ticks back in front of the buffer, so they go with the next flush: nothing is lost, and the
    snapshot is never committed ahead of the ticks it covers. `companions` name more state to store in the
    snapshot, taken at the same instant as the engine's (e.g. what the tick rules and pending runs remember).
    """

    def __init__(
        self,
        *,
        engine: Engine,
        epoch: uuid.UUID,
        seed: int,
        flush_interval: float,
        retention: timedelta,
        prune_interval: float,
        clock: Callable[[], float] = time.monotonic,
        companions: Mapping[str, Callable[[], dict]] | None = None,
    ) -> None:
        self.engine = engine
        self.epoch = epoch
        self.seed = seed
        self.flush_interval = flush_interval
        self.retention = retention
        self.prune_interval = prune_interval
        self.clock = clock
        self.companions = dict(companions or {})
        if clash := set(self.companions) & {*engine.snapshot(), "epoch"}:
            raise ValueError(f"companion state {sorted(clash)} would replace the engine's own")
        self.buffer: list[dict] = []
        self.flushed_ticks = 0
        self.failures = 0
        self._last_flush = clock()
        self._last_prune = clock()
        self._inflight: asyncio.Future | None = None
        self._flush_again = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dawn-history")

    async def __call__(self, result: StepResult) -> None:
        self.buffer.append(result.tick)
        if self.clock() - self._last_flush >= self.flush_interval and (self._inflight is None or self._inflight.done()):
            self._start_flush()

    def flush_soon(self) -> None:
        """Write what is buffered now, not at the next tick's interval: the loop holds, no tick may come."""
        if not self.buffer:
            return
        if self._inflight is None or self._inflight.done():
            self._start_flush()
        else:
            self._flush_again = True  # once the write under way is done

    def _start_flush(self) -> None:
        batch, self.buffer = self.buffer, []
        self._last_flush = self.clock()
        prune = self.clock() - self._last_prune >= self.prune_interval
        if prune:
            self._last_prune = self.clock()
        snapshot = self.engine.snapshot()
        for name, state in self.companions.items():
            snapshot[name] = state()
        tick_number = self.engine.state.tick_number
        loop = asyncio.get_running_loop()
        self._inflight = loop.run_in_executor(self._executor, self._write, batch, snapshot, tick_number, prune)
        self._inflight.add_done_callback(lambda future: self._written(future, batch))

    def _write(self, batch: list[dict], snapshot: dict, tick_number: int, prune: bool) -> None:
        close_old_connections()
        FLUSH_ROWS.observe(len(batch))
        with FLUSH_SECONDS.time():
            services.history_flush(
                ticks=batch, snapshot=snapshot, epoch=self.epoch, seed=self.seed, tick_number=tick_number
            )
        if prune:
            removed = services.history_prune(retention=self.retention)
            if removed:
                logger.info("pruned %d ticks older than %s", removed, self.retention)

    def _written(self, future: asyncio.Future, batch: list[dict]) -> None:
        exc = future.exception()
        if exc is None:
            self.flushed_ticks += len(batch)
            if self._flush_again and self.buffer:
                self._flush_again = False
                self._start_flush()
            return
        self.failures += 1
        DATABASE_ERRORS.labels(component="history").inc()
        self.buffer[:0] = batch
        logger.error("could not persist %d ticks (will retry with the next flush): %r", len(batch), exc)

    async def close(self) -> None:
        """Wait for the write under way, write what is left, and release the thread."""
        for _attempt in range(3):
            if self._inflight is not None:
                try:
                    await self._inflight
                except Exception:
                    pass
            if not self.buffer:
                break
            self._start_flush()
        if self._inflight is not None:
            try:
                await self._inflight
            except Exception:
                pass
        await asyncio.get_running_loop().run_in_executor(self._executor, connections.close_all)
        self._executor.shutdown(wait=True)
        if self.buffer:
            logger.error("%d ticks could not be persisted before exit", len(self.buffer))
