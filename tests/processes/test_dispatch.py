"""The dispatcher inside runtick: real runner, real subprocesses, real database rows."""

import asyncio
import base64
import io
import math

import psutil
import pytest
from channels.db import database_sync_to_async
from django.conf import settings as django_settings
from PIL import Image

from consciousness.engine import Engine, EngineConfig, StepInputs
from consciousness.groups import ENGINE_PROCESS_CANCEL
from consciousness.inbox import EngineInbox
from processes import services
from processes.dispatcher import ProcessDispatcher
from processes.models import MemoryConsolidation, ProcessRun
from processes.registry import script_specs
from processes.sandbox import Runner
from processes.scripts import SCRIPTS

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio, pytest.mark.both_shapes]

FIXTURES = {
    "hang": {"module": "tests.processes.fixtures.hang", "timeout_s": 1.0, "cpu_s": 5},
    "hog": {"module": "tests.processes.fixtures.hog", "timeout_s": 10.0, "memory_bytes": 512 * 2**20},
    "forker": {"module": "tests.processes.fixtures.forker", "timeout_s": 5.0},
    "nap": {"module": "tests.processes.fixtures.nap", "timeout_s": 10.0},
    "recorder": {"module": "tests.processes.fixtures.recorder", "timeout_s": 10.0},
}


@pytest.fixture
def fixtures_registered(settings):
    settings.DAWN_EXTRA_SCRIPTS = FIXTURES


@pytest.fixture
def engine():
    engine = Engine(EngineConfig.from_mapping({"seed": 11}))
    for i in range(150):
        engine.advance(StepInputs(timestamp=1.0 + i / 10))
    return engine


class Harness:
    def __init__(self, engine):
        self.engine = engine
        self.inbox = EngineInbox()
        self.events = []
        self.running_now = set()
        self.most_running = 0
        self.dispatcher = ProcessDispatcher(
            runner=Runner(script_specs(), cwd=django_settings.BASE_DIR),
            context=engine.context,
            add_impact=self.inbox.add_impact,
            set_active=self.inbox.set_active,
            publish=self.publish,
            max_concurrent=3,
        )
        for kind, handler in self.dispatcher.handlers().items():
            self.inbox.on(kind, handler)

    def publish(self, event):
        self.events.append(event)
        if event["type"] == "process":
            data = event["data"]
            if data["status"] == "running":
                self.running_now.add(data["process_id"])
            else:
                self.running_now.discard(data["process_id"])
            self.most_running = max(self.most_running, len(self.running_now))

    async def post(self, script, parameters=None):
        run = await database_sync_to_async(services.run_create)(script=script, parameters=parameters, wake=False)
        self.dispatcher.wake()
        return run

    async def finished(self, runs, timeout=30.0):
        ids = [r.pk for r in runs]

        def all_done():
            rows = list(ProcessRun.objects.filter(pk__in=ids).order_by("id"))
            return rows if all(r.finished for r in rows) else None

        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            rows = await database_sync_to_async(all_done)()
            if rows:
                return rows
            await asyncio.sleep(0.05)
        raise AssertionError("runs did not finish in time")


@pytest.fixture
async def harness(engine, fixtures_registered):
    harness = Harness(engine)
    await harness.dispatcher.start()
    yield harness
    await harness.dispatcher.close()


async def test_each_analysis_completes_with_a_png_and_finite_metrics(harness):
    runs = [await harness.post(name) for name in SCRIPTS]
    for run in await harness.finished(runs):
        assert run.status == "completed", (run.script, run.reason)
        picture = base64.b64decode(run.output["visualization"])
        assert picture.startswith(b"\x89PNG")
        assert Image.open(io.BytesIO(picture)).size[0] >= 64
        assert run.output["analysis"] and isinstance(run.output["analysis"], str)
        assert run.output["metrics"] and all(math.isfinite(v) for v in run.output["metrics"].values())
        assert run.consciousness_impact["mood_influence"] in ("positive", "negative", "neutral")
        assert run.tick_number == 150 and run.context["tick_number"] == 150
    lines = [e for e in harness.events if e["type"] == "process_output"]
    assert lines and all(e["data"]["line"] for e in lines)


async def test_the_same_request_on_the_same_engine_state_gives_the_same_metrics(harness):
    first, second = await harness.post("neural_analyzer"), await harness.post("neural_analyzer")
    a, b = await harness.finished([first, second])
    assert a.seed == b.seed and a.output["metrics"] == b.output["metrics"]


async def test_six_runs_at_once_never_run_more_than_three_together(harness):
    runs = [await harness.post("nap") for _ in range(6)]
    rows = await harness.finished(runs)
    assert all(r.status == "completed" for r in rows)
    assert harness.most_running == 3


async def test_completed_runs_feed_their_impact_to_the_next_tick_and_record_it(harness):
    run = await harness.post("memory_consolidator")
    (row,) = await harness.finished([run])
    impacts = harness.inbox.take(0.0).impacts
    assert [i.source for i in impacts] == [row.process_id]
    assert impacts[0].memory_relief > 0
    harness.dispatcher.after_tick(151, [i.source for i in impacts])
    # until the row says so, the snapshot carries the record (a kill before the write must not lose it)
    assert [(a["script"], a["applied"]) for a in harness.dispatcher.state()["applied"]] == [
        ("memory_consolidator", 151)
    ]
    await asyncio.sleep(0.2)
    await database_sync_to_async(row.refresh_from_db)()
    assert row.applied_at_tick == 151
    assert harness.dispatcher.state()["applied"] == []
    patterns = await database_sync_to_async(lambda: list(MemoryConsolidation.objects.filter(run=row)))()
    assert patterns and all(p.source_tick_end == 150 for p in patterns)


async def test_a_dream_is_woven_from_the_newest_consolidation_its_spec_asks_for(harness):
    (consolidation,) = await harness.finished([await harness.post("memory_consolidator", {"k": 3})])
    (dream,) = await harness.finished([await harness.post("dream_generator")])
    assert dream.status == "completed", dream.reason
    labels = await database_sync_to_async(
        lambda: list(MemoryConsolidation.objects.filter(run=consolidation).values_list("label", flat=True))
    )()
    assert dream.output["metrics"]["patterns_used"] == len(labels) == 3
    assert "long-term memory" in dream.output["analysis"] and set(dream.output["dream"]["keyframes"]) <= set(labels)


async def test_records_a_script_does_not_declare_fail_the_run_and_write_nothing(harness):
    (row,) = await harness.finished([await harness.post("recorder")])
    assert row.status == "failed" and "does not declare records" in row.reason
    assert await database_sync_to_async(MemoryConsolidation.objects.count)() == 0


async def test_a_hanging_script_is_killed_at_the_timeout(harness):
    (row,) = await harness.finished([await harness.post("hang")])
    assert row.status == "timeout" and "timed out" in row.reason


async def test_a_script_that_allocates_without_bound_fails_with_a_memory_reason(harness):
    (row,) = await harness.finished([await harness.post("hog")])
    assert row.status == "failed" and "memory" in row.reason


async def test_a_script_that_forks_leaves_no_process_behind(harness):
    (row,) = await harness.finished([await harness.post("forker")])
    assert row.status == "completed"
    child = row.output["child"]
    await asyncio.sleep(0.2)
    assert not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE


async def test_cancelling_a_running_run_kills_it(harness):
    run = await harness.post("hang")
    while run.pk not in harness.dispatcher.running:
        await asyncio.sleep(0.01)
    await database_sync_to_async(services.run_cancel)(run=run)
    harness.inbox.dispatch({"type": ENGINE_PROCESS_CANCEL, "run": run.pk})
    (row,) = await harness.finished([run])
    assert row.status == "cancelled"


async def test_running_rows_left_by_a_dead_runner_are_abandoned_not_rerun(engine, fixtures_registered):
    stale = await database_sync_to_async(ProcessRun.objects.create)(script="neural_analyzer", status="running", process_id="x")
    harness = Harness(engine)
    await harness.dispatcher.start()
    await harness.dispatcher.close()
    await database_sync_to_async(stale.refresh_from_db)()
    assert stale.status == "abandoned"
