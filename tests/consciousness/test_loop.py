"""TickLoop against a fake clock: absolute deadlines, no drift, skip rather than burst."""

import asyncio
import math
from types import SimpleNamespace

import pytest

from consciousness.loop import UNTHROTTLED_YIELD_S, TickLoop


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        assert delay >= 0
        self.now += delay


class CountingEngine:
    """Stands in for the engine: only the loop's timing is under test here."""

    def __init__(self) -> None:
        self.state = SimpleNamespace(tick_number=0)
        self.inputs = []

    def advance(self, inputs):
        self.inputs.append(inputs)
        self.state = SimpleNamespace(tick_number=self.state.tick_number + 1)
        return SimpleNamespace(state=self.state, tick={"tick_number": self.state.tick_number})


def make_loop(time: FakeTime, **kwargs) -> TickLoop:
    return TickLoop(engine=CountingEngine(), clock=time.clock, wallclock=time.clock, sleep=time.sleep, **kwargs)


def test_ten_minutes_at_10_hz_is_6000_ticks_even_with_work_on_every_tick():
    time = FakeTime()
    tick_times = []

    async def busy_sink(result):
        tick_times.append(time.now)
        time.now += 0.013  # each tick's work takes time; deadlines are absolute, so it must not add up

    loop = make_loop(time, rate=10, sinks=[busy_sink])

    async def stop_after_ten_minutes(result):
        if time.now >= 600.0 - 1e-9:
            loop.stop()

    loop.sinks.insert(0, stop_after_ten_minutes)
    asyncio.run(loop.run())
    within = [t for t in tick_times if t < 600.0]
    assert abs(len(within) - 6000) <= 1
    assert loop.slots_skipped == 0


def test_a_late_tick_skips_missed_slots_instead_of_bursting():
    time = FakeTime()
    tick_times = []

    async def sink(result):
        tick_times.append(time.now)
        if result.state.tick_number == 5:
            time.now += 0.35  # a 350 ms stall: slots 6, 7, 8 are gone

    loop = make_loop(time, rate=10, sinks=[sink], max_ticks=12)
    asyncio.run(loop.run())
    gaps = [b - a for a, b in zip(tick_times, tick_times[1:])]
    assert all(gap >= 0.1 - 1e-9 for gap in gaps), gaps  # never two ticks closer than a period
    assert loop.slots_skipped == 3
    # after the stall the loop is back on its original grid of deadlines
    assert tick_times[-1] == pytest.approx(round(tick_times[-1] * 10) / 10)


def test_max_ticks_and_until_stop_the_loop():
    time = FakeTime()
    assert asyncio.run(make_loop(time, rate=50, max_ticks=7).run()) == 7
    loop = make_loop(time, rate=50, until=20)
    assert asyncio.run(loop.run()) == 20
    assert loop.engine.state.tick_number == 20


def test_a_failing_sink_is_logged_and_the_others_still_run(caplog):
    time = FakeTime()
    seen = []

    async def broken(result):
        raise RuntimeError("boom")

    async def healthy(result):
        seen.append(result.state.tick_number)

    asyncio.run(make_loop(time, rate=10, sinks=[broken, healthy], max_ticks=3).run())
    assert seen == [1, 2, 3]
    assert "boom" in caplog.text


def test_stop_finishes_the_current_tick_and_returns():
    time = FakeTime()
    loop = make_loop(time, rate=10)

    async def stopper(result):
        if result.state.tick_number == 4:
            loop.stop()

    loop.sinks.append(stopper)
    assert asyncio.run(loop.run()) == 4


def test_inputs_carry_the_wallclock_timestamp():
    time = FakeTime()
    time.now = 1000.0
    loop = make_loop(time, rate=4, max_ticks=3)
    asyncio.run(loop.run())
    assert [i.timestamp for i in loop.engine.inputs] == [1000.0, 1000.25, 1000.5]


def test_real_sleep_stops_promptly():
    """With the real clock, stop() interrupts the wait instead of sleeping out a long period."""

    async def scenario():
        loop = TickLoop(engine=CountingEngine(), rate=0.2)  # one tick every 5 s
        task = asyncio.create_task(loop.run())
        await asyncio.sleep(0.05)
        loop.stop()
        return await asyncio.wait_for(task, 1.0)

    assert asyncio.run(scenario()) == 1


class TimedEngine(CountingEngine):
    """A CountingEngine whose every tick takes `cost` seconds of the fake clock."""

    def __init__(self, time: FakeTime, cost: float) -> None:
        super().__init__()
        self.time, self.cost = time, cost

    def advance(self, inputs):
        self.time.now += self.cost
        return super().advance(inputs)


def test_an_unthrottled_loop_never_waits_and_yields_to_other_tasks_every_few_milliseconds():
    time = FakeTime()
    waits = []

    async def sleep(delay):
        waits.append(delay)

    engine = TimedEngine(time, cost=0.0005)
    loop = TickLoop(
        engine=engine, rate=math.inf, clock=time.clock, wallclock=time.clock, sleep=sleep, max_ticks=50
    )
    assert asyncio.run(loop.run()) == 50
    assert loop.slots_skipped == 0
    # 25 ms of ticks: a turn for the event loop every UNTHROTTLED_YIELD_S, never a wait
    assert waits == [0.0] * int(50 * 0.0005 / UNTHROTTLED_YIELD_S)

    async def other_task_runs():
        ran = []
        unthrottled = TickLoop(engine=TimedEngine(FakeTime(), cost=0.001), rate=math.inf, max_ticks=1000)
        unthrottled.clock = unthrottled.engine.time.clock
        helper = asyncio.get_running_loop().create_task(asyncio.sleep(0, result="ran"))
        helper.add_done_callback(lambda t: ran.append(unthrottled.ticks_done))
        await unthrottled.run()
        return ran

    # the helper needs a few turns of the event loop (start, its own sleep, the callback): a few ticks, not 1000
    assert asyncio.run(other_task_runs())[0] <= 4 * UNTHROTTLED_YIELD_S / 0.001


@pytest.mark.parametrize("rate", [0, -1, math.nan])
def test_a_rate_that_is_not_positive_is_refused(rate):
    with pytest.raises(ValueError):
        TickLoop(engine=CountingEngine(), rate=rate)
