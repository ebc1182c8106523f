"""TickLoop against a fake clock: absolute deadlines, no drift, skip rather than burst."""

import asyncio
import math
from types import SimpleNamespace

import pytest

from consciousness.inbox import EngineInbox
from consciousness.engine import Engine, Stimulus
from consciousness.loop import STEP_TICKS_MAX, UNTHROTTLED_YIELD_S, Command, CommandInvalid, TickLoop
from tests.factories import ENGINE_CONFIG
from tests.support import without_timestamps


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.agenda: list[tuple[float, object]] = []  # (when, what): done by the sleep that reaches it

    def clock(self) -> float:
        return self.now

    def at(self, when: float, what) -> None:
        self.agenda = sorted([*self.agenda, (when, what)], key=lambda item: item[0])

    async def sleep(self, delay: float) -> None:
        assert delay >= 0
        if self.agenda and self.agenda[0][0] <= self.now + delay:
            when, what = self.agenda.pop(0)
            self.now = max(self.now, when)
            what()  # e.g. a command: the sleep ends there, as a real one woken early would
            return
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


# --------------------------------------------------------------------------- control: pause, resume, step, rate


async def held(loop: TickLoop) -> None:
    """Until the loop has taken every command sent and waits at a hold (paused, no step left)."""
    for _ in range(100_000):
        if loop.held and not loop.pending:
            return
        await asyncio.sleep(0)
    raise AssertionError("the loop never came to a hold")


def recorder(time: FakeTime, loop_box: list, pause_at: int | None = None):
    """A sink noting (tick_number, clock) of each tick; it pauses the loop after tick `pause_at`."""
    seen = []

    async def sink(result):
        seen.append((result.state.tick_number, time.now))
        if result.state.tick_number == pause_at:
            loop_box[0].command(Command("pause"))

    return sink, seen


def pausing_loop(*, pause_at: int, **limits):
    """A 10 Hz loop on a fake clock that pauses itself after tick `pause_at`: (time, loop, seen, outcomes)."""
    time = FakeTime()
    box: list = []
    sink, seen = recorder(time, box, pause_at=pause_at)
    outcomes: list = []
    loop = make_loop(time, rate=10, sinks=[sink], on_command=outcomes.append, **limits)
    box.append(loop)
    return time, loop, seen, outcomes


def test_a_pause_holds_the_loop_however_long_and_a_resume_does_not_burst():
    time, loop, seen, outcomes = pausing_loop(pause_at=5, max_ticks=10)

    async def scenario():
        task = asyncio.create_task(loop.run())
        await held(loop)
        assert loop.ticks_done == 5
        time.now += 1000.0  # a long pause: 10,000 slots that must not be made up
        loop.command(Command("resume"))
        return await task

    assert asyncio.run(scenario()) == 10
    times = [t for _n, t in seen]
    assert times[:5] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    assert times[5] == pytest.approx(1000.4)  # at once on resume
    assert [b - a for a, b in zip(times[5:], times[6:])] == pytest.approx([0.1] * 4)  # then one per period
    assert loop.slots_skipped == 0
    assert [(o.command.action, o.applied, o.tick_number, o.paused) for o in outcomes] == [
        ("pause", True, 5, True), ("resume", True, 5, False)
    ]


def test_a_step_runs_exactly_its_ticks_at_the_rate_and_holds_again_and_is_refused_while_running():
    time, loop, seen, outcomes = pausing_loop(pause_at=3, until=9)

    async def scenario():
        task = asyncio.create_task(loop.run())
        await held(loop)
        time.now += 50.0
        loop.command(Command("step", ticks=4))
        await held(loop)
        assert loop.engine.state.tick_number == 7 and loop.paused
        loop.command(Command("resume"))
        loop.command(Command("step", ticks=2))  # running now: refused, nothing runs on its account
        return await task

    asyncio.run(scenario())
    steps = [t for n, t in seen if 4 <= n <= 7]
    assert steps[0] == pytest.approx(50.2)
    assert [b - a for a, b in zip(steps, steps[1:])] == pytest.approx([0.1] * 3)
    assert [(o.command.action, o.applied) for o in outcomes] == [
        ("pause", True), ("step", True), ("resume", True), ("step", False)
    ]
    assert outcomes[1].detail == "stepping ticks 4..7" and outcomes[1].tick_number == 3
    assert "pause it" in outcomes[3].detail and not outcomes[3].paused


def test_a_rate_change_re_anchors_the_deadlines_and_wakes_a_long_wait():
    time = FakeTime()
    seen = []

    async def sink(result):
        seen.append(time.now)

    loop = make_loop(time, rate=0.2, sinks=[sink], max_ticks=7)  # one tick every 5 s
    time.at(1.0, lambda: loop.command(Command("rate", rate=10)))  # during the first wait
    time.at(1.45, lambda: loop.command(Command("rate", rate=2)))
    asyncio.run(loop.run())
    # tick 1 at 0; the faster rate wakes the wait at 1.0 (tick 0.1 after the last is past: at once), then 10 Hz;
    # slowing to 2 Hz at 1.45 puts the next tick 0.5 s after the last one started
    assert seen == pytest.approx([0.0, 1.0, 1.1, 1.2, 1.3, 1.4, 1.9])
    assert loop.rate == 2 and loop.slots_skipped == 0


def test_a_slower_rate_puts_the_next_tick_one_new_period_after_the_last():
    time = FakeTime()
    seen = []

    async def sink(result):
        seen.append(time.now)

    loop = make_loop(time, rate=10, sinks=[sink], max_ticks=5)
    time.at(0.15, lambda: loop.command(Command("rate", rate=2)))
    asyncio.run(loop.run())
    assert seen == pytest.approx([0.0, 0.1, 0.6, 1.1, 1.6])


def test_stop_ends_a_held_loop():
    async def scenario():
        loop = TickLoop(engine=CountingEngine(), rate=10)
        loop.command(Command("pause"))
        task = asyncio.create_task(loop.run())
        await held(loop)
        loop.stop()
        return await asyncio.wait_for(task, 1.0)

    assert asyncio.run(scenario()) == 0


def test_the_hold_handler_is_told_once_per_hold():
    time = FakeTime()
    holds = []
    loop = make_loop(time, rate=10, on_hold=lambda: holds.append(loop.engine.state.tick_number))

    async def scenario():
        loop.command(Command("pause"))
        task = asyncio.create_task(loop.run())
        await held(loop)
        loop.command(Command("rate", rate=5))  # no tick: still the same hold
        await held(loop)
        loop.command(Command("step", ticks=2))
        await held(loop)
        loop.stop()
        await task

    asyncio.run(scenario())
    assert holds == [0, 2]


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"action": "jump"}, "action"),
        ({"action": "step"}, "ticks"),
        ({"action": "step", "ticks": 0}, "ticks"),
        ({"action": "step", "ticks": STEP_TICKS_MAX + 1}, "ticks"),
        ({"action": "step", "ticks": True}, "ticks"),
        ({"action": "step", "ticks": 2.0}, "ticks"),
        ({"action": "pause", "ticks": 3}, "ticks"),
        ({"action": "rate"}, "rate"),
        ({"action": "rate", "rate": 0}, "rate"),
        ({"action": "rate", "rate": 1001}, "rate"),
        ({"action": "rate", "rate": math.inf}, "rate"),
        ({"action": "rate", "rate": math.nan}, "rate"),
        ({"action": "resume", "rate": 5}, "rate"),
    ],
)
def test_a_command_out_of_bounds_is_refused_naming_its_field(fields, field):
    with pytest.raises(CommandInvalid) as refused:
        Command(**fields)
    assert refused.value.field == field


# --------------------------------------------------------------------------- control and determinism


def controlled_run(script, *, until: int = 60, pause_at: int | None = None) -> list[dict]:
    """A seeded engine driven to `until` through `script`: one action per hold, given the loop and the inbox."""
    time = FakeTime()
    engine = Engine(ENGINE_CONFIG, seed=11)
    inbox = EngineInbox(next_tick=lambda: engine.state.tick_number + 1)
    ticks = []
    box: list = []

    async def sink(result):
        ticks.append(result.tick)
        if result.state.tick_number == pause_at:
            box[0].command(Command("pause"))

    loop = TickLoop(
        engine=engine, rate=10, sinks=[sink], inputs=inbox.take, until=until,
        clock=time.clock, wallclock=time.clock, sleep=time.sleep,
    )
    box.append(loop)

    async def scenario():
        task = asyncio.create_task(loop.run())
        for action in script:
            await held(loop)
            action(loop, inbox, time)
        return await task

    asyncio.run(scenario())
    return ticks


def wait(seconds):
    def act(loop, inbox, time):
        time.now += seconds
    return act


def command(**fields):
    def act(loop, inbox, time):
        loop.command(Command(**fields))
    return act


def stimulus(kind, intensity):
    def act(loop, inbox, time):
        inbox.add_stimulus(Stimulus(kind=kind, intensity=intensity), key="k", sender="s")
    return act


def both(*actions):
    def act(loop, inbox, time):
        for action in actions:
            action(loop, inbox, time)
    return act


def test_the_series_depends_on_seed_stimuli_and_steps_never_on_pause_length_or_rate():
    plain = controlled_run([])
    paused = controlled_run(
        [both(wait(900), command(action="step", ticks=7)), both(wait(3), command(action="rate", rate=40),
         command(action="resume"))],
        pause_at=10,
    )
    assert [t["tick_number"] for t in paused] == list(range(1, 61))
    assert without_timestamps(paused) == without_timestamps(plain)  # pausing, stepping, the rate: no trace

    # a stimulus sent while paused lands on the first stepped tick, however long the pause and whatever the rate
    def sequence(pause_s, rate):
        return controlled_run(
            [both(wait(pause_s), stimulus("chaos", 0.9), command(action="step", ticks=1)),
             both(command(action="rate", rate=rate), wait(pause_s), command(action="step", ticks=5)),
             command(action="resume")],
            pause_at=20,
        )

    first, second = sequence(1.0, 3), sequence(5000.0, 200)
    assert without_timestamps(first) == without_timestamps(second)
    assert without_timestamps(first)[:20] == without_timestamps(plain)[:20]
    assert without_timestamps(first)[20] != without_timestamps(plain)[20]  # tick 21 applied the stimulus
