"""HistoryWriter: the tick loop's sink that persists ticks in batches, off the event loop."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.db import close_old_connections, connections, reset_queries

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

    While writes fail, at most `max_backlog` unpersisted ticks are kept (plus those that arrive during the
    one write under way, which the database's lock and statement timeouts bound): beyond, the oldest are
    dropped, the range logged once per episode (a run of failed writes) and counted (`dropped_ticks`).
    Dropped ticks are gone for good: the next snapshot that commits covers them, so a restart resumes
    after them and the history keeps a gap there, never a snapshot ahead of what it holds.
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
        max_backlog: int,
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
        self.max_backlog = max_backlog
        self.buffer: list[dict] = []
        self.flushed_ticks = 0
        self.failures = 0
        self.consecutive_failures = 0
        self.last_error: str | None = None
        self.dropped_ticks = 0
        self._dropping: tuple[int, int] | None = None  # the range dropped in the current episode
        self._last_flush = clock()
        self._last_success: float | None = None
        self._last_prune = clock()
        self._inflight: asyncio.Future | None = None  # None again only once _written has dealt with it
        self._inflight_batch: list[dict] = []
        self._flush_again = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dawn-history")

    async def __call__(self, result: StepResult) -> None:
        self.buffer.append(result.tick)
        if self._inflight is None:
            if self.consecutive_failures:
                self._trim()
            if self.clock() - self._last_flush >= self.flush_interval:
                self._start_flush()

    @property
    def backlog(self) -> int:
        """Ticks not persisted yet: those being written and those waiting."""
        return len(self._inflight_batch) + len(self.buffer)

    def status(self) -> dict:
        """The writer's figures for /health/ (ages in seconds, as of now)."""
        inflight, buffer = self._inflight_batch, self.buffer
        oldest = inflight[0] if inflight else buffer[0] if buffer else None
        success = self._last_success
        waited = round(max(0.0, time.time() - oldest["timestamp"]), 3) if oldest else None
        return {
            "backlog_ticks": len(inflight) + len(buffer),
            "oldest_unpersisted_tick": oldest["tick_number"] if oldest else None,
            "oldest_unpersisted_age_s": waited,
            "last_flush_age_s": round(self.clock() - success, 3) if success is not None else None,
            "failures": self.failures,
            "consecutive_failures": self.consecutive_failures,
            "dropped_ticks": self.dropped_ticks,
            "max_backlog": self.max_backlog,
            "last_error": self.last_error,
        }

    def _trim(self) -> None:
        """Drop the oldest waiting ticks beyond max_backlog (called only with no write in flight, so the
        buffer's head is the oldest unpersisted tick and each episode drops one contiguous range)."""
        excess = len(self.buffer) - self.max_backlog
        if excess <= 0:
            return
        dropped, self.buffer = self.buffer[:excess], self.buffer[excess:]
        first, last = dropped[0]["tick_number"], dropped[-1]["tick_number"]
        if self._dropping is None:
            logger.error(
                "more than persistence.max_backlog (%d) ticks wait to be persisted: dropping the oldest, "
                "from tick %d, until the database takes writes again", self.max_backlog, first,
            )
            self._dropping = (first, last)
        else:
            self._dropping = (self._dropping[0], last)
        self.dropped_ticks += excess

    def _dropped_report(self) -> None:
        if self._dropping is not None:
            first, last = self._dropping
            count = last - first + 1
            message = "ticks %d..%d (%d) were dropped unpersisted: the history has a gap there"
            logger.error(message, first, last, count)
            self._dropping = None

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
        self._inflight_batch = batch
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
        try:
            with FLUSH_SECONDS.time():
                services.history_flush(
                    ticks=batch, snapshot=snapshot, epoch=self.epoch, seed=self.seed, tick_number=tick_number
                )
            if prune:
                removed = services.history_prune(retention=self.retention)
                if removed:
                    logger.info("pruned %d ticks older than %s", removed, self.retention)
        finally:
            # under DEBUG Django logs every query, the snapshot's included, in the connection's queries_log:
            # this thread never reads it, so it keeps none
            reset_queries()

    def _written(self, future: asyncio.Future, batch: list[dict]) -> None:
        self._inflight, self._inflight_batch = None, []
        exc = future.exception()
        if exc is None:
            self.flushed_ticks += len(batch)
            self._last_success = self.clock()
            if self.consecutive_failures:
                logger.info("persisting again after %d failed flushes", self.consecutive_failures)
            self.consecutive_failures = 0
            self.last_error = None
            self._dropped_report()
            if self._flush_again and self.buffer:
                self._flush_again = False
                self._start_flush()
            return
        self.failures += 1
        self.consecutive_failures += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        DATABASE_ERRORS.labels(component="history").inc()
        self.buffer[:0] = batch
        self._trim()
        if self.consecutive_failures in (1, 10) or self.consecutive_failures % 100 == 0:
            logger.error(
                "could not persist %d ticks (%d failed flushes in a row; will retry with the next flush): %r",
                len(batch), self.consecutive_failures, exc,
            )

    async def _settle(self) -> None:
        """Wait until the write under way (if any) is done and _written has dealt with its outcome."""
        while (inflight := self._inflight) is not None:
            try:
                await inflight
            except Exception:
                pass
            await asyncio.sleep(0)  # _written runs as the future's callback, on a later turn

    async def close(self) -> None:
        """Wait for the write under way, write what is left (once: the loop has stopped), free the thread."""
        await self._settle()
        if self.buffer:
            self._start_flush()
            await self._settle()
        await asyncio.get_running_loop().run_in_executor(self._executor, connections.close_all)
        self._executor.shutdown(wait=True)
        self._dropped_report()
        if self.buffer:
            logger.error("%d ticks could not be persisted before exit", len(self.buffer))
