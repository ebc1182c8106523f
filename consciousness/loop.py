"""TickLoop: the clock that drives the engine and hands each tick to its sinks."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from consciousness.engine import Engine, StepInputs, StepResult
from consciousness.metrics import STEP_SECONDS, TICK_LATENESS

logger = logging.getLogger(__name__)

# unthrottled, the loop hands the event loop a turn this often rather than after every tick: a turn costs about
# as much as a tick's sinks, and the server, the sinks' tasks and the signal handlers need no more than this
UNTHROTTLED_YIELD_S = 0.002

Sink = Callable[[StepResult], Awaitable[None]]
InputSource = Callable[[float], StepInputs]


def _plain_inputs(timestamp: float) -> StepInputs:
    return StepInputs(timestamp=timestamp)


class TickLoop:
    """Advance the engine on absolute deadlines: no drift, and when late, skip slots rather than burst."""

    def __init__(
        self,
        *,
        engine: Engine,
        rate: float,
        sinks: Sequence[Sink] = (),
        inputs: InputSource = _plain_inputs,
        max_ticks: int | None = None,
        until: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        wallclock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        if not rate > 0:
            raise ValueError("rate must be positive")
        self.engine = engine
        self.period = 1.0 / rate  # 0.0 at rate math.inf: unthrottled, no deadlines
        self.sinks = list(sinks)
        self.inputs = inputs
        self.max_ticks = max_ticks
        self.until = until
        self.clock = clock
        self.wallclock = wallclock
        self._sleep = sleep
        self._stop = asyncio.Event()
        self.ticks_done = 0
        self.slots_skipped = 0
        self.last_tick_at: float | None = None

    def stop(self) -> None:
        """Finish the tick under way, then return from run()."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def finished(self) -> bool:
        if self._stop.is_set():
            return True
        if self.max_ticks is not None and self.ticks_done >= self.max_ticks:
            return True
        return self.until is not None and self.engine.state.tick_number >= self.until

    async def _wait(self, delay: float) -> None:
        if self._sleep is not None:
            await self._sleep(max(delay, 0.0))
            return
        if delay <= 0:
            await asyncio.sleep(0)  # let the server and the sinks' tasks run even when late
            return
        try:
            async with asyncio.timeout(delay):
                await self._stop.wait()
        except TimeoutError:
            pass

    async def run(self) -> int:
        """Tick until stopped or a limit is reached; returns the number of ticks done."""
        next_at = yielded_at = self.clock()
        while not self.finished():
            TICK_LATENESS.observe(max(0.0, self.clock() - next_at))
            timestamp = self.wallclock()
            with STEP_SECONDS.time():
                result = self.engine.advance(self.inputs(timestamp))
            self.ticks_done += 1
            self.last_tick_at = timestamp
            for sink in self.sinks:
                try:
                    await sink(result)
                except Exception:
                    logger.exception("tick sink %r failed at tick %d", sink, result.state.tick_number)
            if self.period == 0.0:
                if self.finished():
                    break
                if self.clock() - yielded_at >= UNTHROTTLED_YIELD_S:
                    await self._wait(0.0)  # unthrottled: still let the server and the sinks' tasks run
                    yielded_at = self.clock()
                continue
            next_at += self.period
            now = self.clock()
            if next_at < now:
                # late: drop the missed slots instead of bursting to catch up
                missed = int((now - next_at) / self.period) + 1
                self.slots_skipped += missed
                next_at += missed * self.period
            if self.finished():
                break
            await self._wait(next_at - self.clock())
        return self.ticks_done
