"""Impacts apply at a tick fixed by the run's trigger, whatever the script's wall time; a late one is marked."""

import asyncio

import pytest
from channels.db import database_sync_to_async
from django.conf import settings as django_settings

from consciousness.engine import Engine, EngineConfig, StepInputs
from consciousness.inbox import EngineInbox
from processes import services
from processes.dispatcher import ProcessDispatcher
from processes.models import ProcessRun
from processes.registry import script_specs
from processes.sandbox import Runner

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

DELAY = 3


@pytest.fixture
def slow_registered(settings):
    settings.DAWN_EXTRA_SCRIPTS = {"slow_impact": {"module": "tests.processes.fixtures.slow_impact", "timeout_s": 10.0}}


class Ticking:
    """An engine, its inbox and a dispatcher wired as runtick wires them, ticked by hand."""

    def __init__(self):
        self.engine = Engine(EngineConfig.from_mapping({"seed": 11}))
        for i in range(150):
            self.engine.advance(StepInputs(timestamp=float(i)))
        self.inbox = EngineInbox(next_tick=lambda: self.engine.state.tick_number + 1)
        self.dispatcher = ProcessDispatcher(
            runner=Runner(script_specs(), cwd=django_settings.BASE_DIR),
            context=self.engine.context,
            add_impact=self.inbox.add_impact,
            set_active=self.inbox.set_active,
            publish=lambda message: None,
            max_concurrent=3,
            impact_delay=DELAY,
            now=lambda: self.engine.state.tick_number,
        )

    def tick(self):
        """One tick, and what the process sink does after it; returns the sources of the impacts it applied."""
        result = self.engine.advance(self.inbox.take(0.0))
        sources = [impact.source for impact in self.inbox.taken_impacts]
        self.dispatcher.after_tick(result.state.tick_number, sources, mood=result.tick["mood"])
        return result, sources

    async def run(self, script):
        run = await database_sync_to_async(services.run_create)(script=script, wake=False)
        self.dispatcher.wake()
        return run

    async def row(self, run, *, finished=True, timeout=20.0):
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            row = await database_sync_to_async(ProcessRun.objects.get)(pk=run.pk)
            if row.finished or not finished:
                return row
            await asyncio.sleep(0.05)
        raise AssertionError("the run did not finish in time")


@pytest.fixture
async def ticking(slow_registered):
    ticking = Ticking()
    await ticking.dispatcher.start()
    yield ticking
    await ticking.dispatcher.close()


async def test_a_fast_runs_impact_waits_for_its_due_tick(ticking):
    run = await ticking.run("memory_consolidator")
    row = await ticking.row(run)
    assert row.status == "completed" and (row.tick_number, row.impact_due_tick) == (150, 150 + DELAY)
    applied = [ticking.tick()[1] for _ in range(DELAY)]
    assert applied == [[], [], [row.process_id]]  # ticks 151, 152: nothing; 153: the impact
    await asyncio.sleep(0.3)
    row = await ticking.row(run)
    assert row.applied_at_tick == 153 and row.impact_late is False
    assert row.as_process_output()["impact_late"] is False


async def test_a_run_that_outlasts_its_delay_applies_at_the_next_tick_and_is_late(ticking):
    run = await ticking.run("slow_impact")
    while (await ticking.row(run, finished=False)).status != "running":
        await asyncio.sleep(0.02)
    for _ in range(DELAY + 2):  # past the due tick while the script still sleeps
        assert ticking.tick()[1] == []
    row = await ticking.row(run)
    assert row.impact_due_tick == 153 and row.status == "completed"
    result, sources = ticking.tick()
    assert sources == [row.process_id] and result.state.tick_number == 156
    await asyncio.sleep(0.3)
    row = await ticking.row(run)
    assert row.applied_at_tick == 156 and row.impact_late is True
    assert row.as_process_output()["impact_late"] is True


async def test_a_run_is_listed_in_active_processes_from_its_tick_to_its_due_tick(ticking):
    run = await ticking.run("memory_consolidator")
    await ticking.row(run)
    listed = [ticking.tick()[0].tick["active_processes"] for _ in range(DELAY + 1)]
    assert listed == [["memory_consolidator"]] * DELAY + [[]]


async def test_a_batch_wait_returns_once_the_due_run_finished(ticking):
    run = await ticking.run("slow_impact")
    while (await ticking.row(run, finished=False)).status != "running":
        await asyncio.sleep(0.02)
    await asyncio.wait_for(ticking.dispatcher.due(153, patience=10.0), 10)
    assert (await ticking.row(run, finished=False)).status == "completed"


async def test_a_run_cancelled_while_queued_is_no_longer_waited_for_nor_listed(ticking):
    ticking.dispatcher.max_concurrent = 0  # nothing is claimed: the run stays queued
    ticking.dispatcher.enqueue(script="neural_analyzer", trigger="every 50 ticks")
    while not ticking.dispatcher.inflight.entries[0].run_id:
        await asyncio.sleep(0.02)
    row = await database_sync_to_async(ProcessRun.objects.get)(pk=ticking.dispatcher.inflight.entries[0].run_id)
    await database_sync_to_async(services.run_cancel)(run=row)
    for _ in range(DELAY):
        ticking.tick()
    ticking.dispatcher.wake()
    await asyncio.wait_for(ticking.dispatcher.due(153, patience=10.0), 5)
    assert ticking.tick()[0].tick["active_processes"] == []  # 154: in flight no more
