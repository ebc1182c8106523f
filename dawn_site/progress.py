"""runtick's progress line: every N seconds, what an operator wants to see at a glance, read from the metrics."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import REGISTRY

logger = logging.getLogger("dawn_site.progress")


def _sample(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


class ProgressReport:
    """One line per interval: tick, rate, skipped slots, lateness, clients, flushes (deltas since the last line)."""

    def __init__(self, *, loop: Any, history: Any, clients: Callable[[], int | None], clock=time.monotonic) -> None:
        self.loop = loop
        self.history = history
        self.clients = clients
        self.clock = clock
        self._last = self._figures()

    def _figures(self) -> dict[str, float]:
        return {
            "at": self.clock(),
            "ticks": self.loop.ticks_done,
            "skipped": self.loop.slots_skipped,
            "late_sum": _sample("dawn_tick_lateness_seconds_sum"),
            "late_count": _sample("dawn_tick_lateness_seconds_count"),
            "flushed": self.history.flushed_ticks,
            "flush_sum": _sample("dawn_history_flush_seconds_sum"),
            "flush_count": _sample("dawn_history_flush_seconds_count"),
        }

    def line(self) -> str:
        """The summary since the previous call."""
        now, last = self._figures(), self._last
        self._last = now
        delta = {key: now[key] - last[key] for key in now}
        rate = delta["ticks"] / delta["at"] if delta["at"] > 0 else 0.0
        lateness = 1000 * delta["late_sum"] / delta["late_count"] if delta["late_count"] else 0.0
        flush_ms = 1000 * delta["flush_sum"] / delta["flush_count"] if delta["flush_count"] else 0.0
        clients = self.clients()
        return (
            f"tick {self.loop.engine.state.tick_number}{' (paused)' if self.loop.paused else ''}: {rate:.1f} ticks/s, {int(delta['skipped'])} slots skipped, "
            f"lateness {lateness:.1f} ms mean, "
            f"{'no stream here' if clients is None else f'{clients} clients'}, "
            f"{int(delta['flushed'])} ticks persisted in {int(delta['flush_count'])} flushes ({flush_ms:.1f} ms mean), "
            f"{self.history.backlog} buffered, {self.history.failures} flush failures"
        )

    async def run(self, interval: float) -> None:
        """Log the line every `interval` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            logger.info("%s", self.line())
