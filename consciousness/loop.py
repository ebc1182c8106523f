"""TickLoop: the clock that drives the engine and hands each tick to its sinks; and what may control it."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from consciousness.engine import Engine, StepInputs, StepResult
from consciousness.metrics import STEP_SECONDS, TICK_LATENESS

logger = logging.getLogger(__name__)

# unthrottled, the loop hands the event loop a turn this often rather than after every tick: a turn costs about
# as much as a tick's sinks, and the server, the sinks' tasks and the signal handlers need no more than this
UNTHROTTLED_YIELD_S = 0.002

Sink = Callable[[StepResult], Awaitable[None]]
InputSource = Callable[[float], StepInputs]

ACTIONS = ("pause", "resume", "step", "rate")  # what a Command may ask of the loop
STEP_TICKS_MAX = 1000  # ticks one step command may ask for


def tick_rate_check(value: Any) -> float:
    """The one check of a tick rate (config.yaml, runtick --rate, rate commands): finite, in (0, 1000] Hz."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("must be a number")
    if not math.isfinite(value) or not 0 < value <= 1000:
        raise ValueError("must be a tick rate in (0, 1000] Hz")
    return float(value)


class CommandInvalid(ValueError):
    """A command the loop cannot take as given; `field` names the offending part."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Command:
    """Pause, resume, step `ticks` ticks while paused or set the `rate`; `ref` goes with the outcome."""

    action: str
    ticks: int | None = None
    rate: float | None = None
    ref: Any = None

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise CommandInvalid("action", f"must be one of {', '.join(ACTIONS)}")
        if self.action == "step":
            ticks = self.ticks
            if isinstance(ticks, bool) or not isinstance(ticks, int) or not 1 <= ticks <= STEP_TICKS_MAX:
                message = f"a step needs a whole number of ticks from 1 to {STEP_TICKS_MAX}"
                raise CommandInvalid("ticks", message)
        elif self.ticks is not None:
            raise CommandInvalid("ticks", "goes with the action step only")
        if self.action == "rate":
            try:
                object.__setattr__(self, "rate", tick_rate_check(self.rate))
            except ValueError as exc:
                raise CommandInvalid("rate", str(exc)) from None
        elif self.rate is not None:
            raise CommandInvalid("rate", "goes with the action rate only")


@dataclass(frozen=True)
class CommandOutcome:
    """What a command did at the boundary after tick `tick_number`; `paused`, `rate`: the loop's after it."""

    command: Command
    applied: bool
    detail: str
    tick_number: int
    paused: bool
    rate: float  # math.inf: unthrottled


def _plain_inputs(timestamp: float) -> StepInputs:
    return StepInputs(timestamp=timestamp)


class TickLoop:
    """Advance the engine on absolute deadlines: no drift, and when late, skip slots rather than burst.

    Commands (`command()`) are applied between ticks, in order: a paused loop computes no tick until it is
    resumed or stepped; after a resume, a step or a rate change the deadlines are re-anchored (the next tick
    one period after the last, or at once if that is past), so a pause never turns into a burst.
    """

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
        on_command: Callable[[CommandOutcome], None] | None = None,
        on_hold: Callable[[], None] | None = None,
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
        self.on_command = on_command  # told each command's outcome, at the boundary that applied it
        self.on_hold = on_hold  # told each time the loop comes to a hold (paused, no step left)
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()  # a command or stop(): the loop returns to the boundary at once
        self._commands: deque[Command] = deque()
        self.paused = False
        self.steps_left = 0
        self.ticks_done = 0
        self.slots_skipped = 0
        self.last_tick_at: float | None = None
        self._next_at = 0.0
        self._last_started: float | None = None  # clock() at the start of the last tick
        self.held = False  # True while the loop waits at a hold

    @property
    def rate(self) -> float:
        return 1.0 / self.period if self.period else math.inf

    @property
    def pending(self) -> int:
        """Commands waiting for the next boundary."""
        return len(self._commands)

    @property
    def holding(self) -> bool:
        """Paused with no step to run: no tick until a command comes."""
        return self.paused and not self.steps_left

    def stop(self) -> None:
        """Finish the tick under way, then return from run()."""
        self._stop.set()
        self._wake.set()

    def command(self, command: Command) -> None:
        """Queue a command for the next boundary between ticks (at once if the loop is waiting)."""
        self._commands.append(command)
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def finished(self) -> bool:
        if self._stop.is_set():
            return True
        if self.max_ticks is not None and self.ticks_done >= self.max_ticks:
            return True
        return self.until is not None and self.engine.state.tick_number >= self.until

    def _reanchor(self) -> None:
        now = self.clock()
        self._next_at = now if self._last_started is None else max(now, self._last_started + self.period)

    def _apply(self, command: Command) -> CommandOutcome:
        applied, detail = True, ""
        if command.action == "pause":
            detail = "already paused" if self.holding else (
                f"paused; {self.steps_left} steps dropped" if self.steps_left else "paused"
            )
            self.paused, self.steps_left = True, 0
        elif command.action == "resume":
            detail = "resumed" if self.paused else "already running"
            if self.paused:
                self._reanchor()
            self.paused, self.steps_left = False, 0
        elif command.action == "step":
            if not self.paused:
                applied, detail = False, "the engine is running: pause it before stepping"
            else:
                if not self.steps_left:
                    self._reanchor()
                first = self.engine.state.tick_number + self.steps_left + 1
                self.steps_left += command.ticks
                detail = f"stepping ticks {first}..{first + command.ticks - 1}"
        else:
            self.period = 1.0 / command.rate
            self._reanchor()
            detail = f"{command.rate:g} ticks per second"
        return CommandOutcome(
            command=command, applied=applied, detail=detail, tick_number=self.engine.state.tick_number,
            paused=self.paused, rate=self.rate,
        )

    def _boundary(self) -> None:
        """Between two ticks: apply the commands that came, in order, and tell who wants to know."""
        self._wake.clear()
        if self._stop.is_set():
            self._wake.set()
        while self._commands:
            outcome = self._apply(self._commands.popleft())
            if self.on_command is not None:
                try:
                    self.on_command(outcome)
                except Exception:
                    logger.exception("command handler failed on %r", outcome.command.action)

    async def _wait(self, delay: float) -> bool:
        """Wait up to `delay` seconds; True if a command or stop() came meanwhile."""
        if self._sleep is not None:
            await self._sleep(max(delay, 0.0))
            return self._wake.is_set()
        if delay <= 0:
            await asyncio.sleep(0)  # let the server and the sinks' tasks run even when late
            return self._wake.is_set()
        try:
            async with asyncio.timeout(delay):
                await self._wake.wait()
        except TimeoutError:
            pass
        return self._wake.is_set()

    async def _hold(self) -> None:
        if not self.held:
            self.held = True
            if self.on_hold is not None:
                try:
                    self.on_hold()
                except Exception:
                    logger.exception("hold handler failed")
        await self._wake.wait()  # no clock: nothing is due until a command (or stop) comes

    async def run(self) -> int:
        """Tick until stopped or a limit is reached; returns the number of ticks done."""
        self._next_at = yielded_at = self.clock()
        while True:
            self._boundary()
            if self.finished():
                break
            if self.holding:
                await self._hold()
                continue
            self.held = False
            if self.period and (delay := self._next_at - self.clock()) > 0 and await self._wait(delay):
                continue  # a command or stop() came: back to the boundary (the deadline stands unless moved)
            self._last_started = self.clock()
            TICK_LATENESS.observe(max(0.0, self._last_started - self._next_at))
            timestamp = self.wallclock()
            with STEP_SECONDS.time():
                result = self.engine.advance(self.inputs(timestamp))
            self.ticks_done += 1
            self.last_tick_at = timestamp
            if self.steps_left:
                self.steps_left -= 1
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
            self._next_at += self.period
            now = self.clock()
            if self._next_at < now:
                # late: drop the missed slots instead of bursting to catch up
                missed = int((now - self._next_at) / self.period) + 1
                self.slots_skipped += missed
                self._next_at += missed * self.period
        return self.ticks_done
