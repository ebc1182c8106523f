"""services.runs_resume: what the runs become when the engine resumes at a snapshot."""

import uuid

import pytest

from processes import services
from processes.models import MemoryConsolidation, ProcessRun

pytestmark = pytest.mark.django_db

EPOCH = uuid.uuid4()
SNAPSHOT = 100


def auto(script, tick, status, **fields):
    return ProcessRun.objects.create(
        script=script, trigger="rule", tick_number=tick, impact_due_tick=tick + 10, epoch=EPOCH, status=status,
        process_id=f"{script}_{tick}_{status}", **fields,
    )


def consolidate(run):
    MemoryConsolidation.objects.create(
        run=run, label="p", centroid=[0.5], weight=1.0, support=3, source_tick_start=run.tick_number - 9,
        source_tick_end=run.tick_number,
    )


def pending(run):
    return {"script": run.script, "trigger": run.trigger, "tick": run.tick_number, "due": run.impact_due_tick, "run": None}


def test_runs_of_ticks_beyond_the_snapshot_are_superseded_and_their_consolidations_deleted():
    before, after = auto("memory_consolidator", 60, "completed"), auto("memory_consolidator", 120, "completed")
    consolidate(before), consolidate(after)
    queued_after = auto("neural_analyzer", 110, "queued")
    outcome = services.runs_resume(epoch=EPOCH, tick_number=SNAPSHOT, pending=[])
    assert outcome.superseded == 2
    for run in (after, queued_after):
        run.refresh_from_db()
        assert run.status == "abandoned" and run.reason.startswith("superseded")
    assert list(MemoryConsolidation.objects.values_list("run_id", flat=True)) == [before.pk]
    before.refresh_from_db()
    assert before.status == "completed"


def test_pending_runs_are_kept_rerun_or_recreated_on_their_own_tick():
    done = auto("neural_analyzer", 95, "completed", consciousness_impact={"scup_change": 1.0}, applied_at_tick=105)
    running = auto("chaos_engine", 97, "running")
    lost = {"script": "dream_generator", "trigger": "mood contemplative", "tick": 99, "due": 109, "run": None}
    finished_long_ago = auto("neural_analyzer", 50, "completed", consciousness_impact={"scup_change": 1.0}, applied_at_tick=60)
    outcome = services.runs_resume(epoch=EPOCH, tick_number=SNAPSHOT, pending=[pending(done), pending(running), lost])
    assert [r.script for r in outcome.inflight] == ["neural_analyzer", "chaos_engine", "dream_generator"]
    done.refresh_from_db()
    assert done.status == "completed" and done.applied_at_tick is None  # applied after the snapshot: again
    assert {r.script for r in outcome.rerun} == {"chaos_engine", "dream_generator"}
    assert all(r.status == "queued" for r in outcome.rerun)
    created = ProcessRun.objects.get(script="dream_generator")
    assert (created.tick_number, created.impact_due_tick, created.epoch) == (99, 109, EPOCH)
    finished_long_ago.refresh_from_db()
    assert finished_long_ago.applied_at_tick == 60


def test_manual_runs_claimed_after_the_snapshot_go_back_to_the_queue_and_other_runs_are_abandoned():
    manual = ProcessRun.objects.create(
        script="neural_analyzer", tick_number=103, impact_due_tick=113, epoch=EPOCH, status="running", process_id="m"
    )
    stranger = ProcessRun.objects.create(script="neural_analyzer", status="running", process_id="s")
    foreign = ProcessRun.objects.create(
        script="neural_analyzer", trigger="rule", tick_number=5, epoch=uuid.uuid4(), status="queued", process_id="f"
    )
    services.runs_resume(epoch=EPOCH, tick_number=SNAPSHOT, pending=[])
    for run in (manual, stranger, foreign):
        run.refresh_from_db()
    assert manual.status == "queued" and manual.tick_number is None and manual.epoch is None
    assert stranger.status == "abandoned" and foreign.status == "abandoned"


def test_an_impact_the_snapshot_saw_applied_is_recorded_on_its_row_even_if_the_kill_came_before_the_write():
    # tick 90 applied the run's impact and was flushed with the snapshot; the row's own write never came
    run = auto("consciousness_processor", 80, "completed", consciousness_impact={"scup_change": 1.0})
    manual = ProcessRun.objects.create(
        script="neural_analyzer", tick_number=85, impact_due_tick=95, epoch=EPOCH, status="completed",
        process_id="m", consciousness_impact={"scup_change": 0.5},
    )
    applied = [{**pending(run), "applied": 90}, {**pending(manual), "run": manual.pk, "applied": 96}]
    outcome = services.runs_resume(epoch=EPOCH, tick_number=SNAPSHOT, pending=[], applied=applied)
    assert outcome.inflight == []  # nothing to apply again
    for row, tick in ((run, 90), (manual, 96)):
        row.refresh_from_db()
        assert row.applied_at_tick == tick and row.status == "completed"
    gone = {"script": "chaos_engine", "trigger": "rule", "tick": 70, "due": 80, "run": None, "applied": 80}
    services.runs_resume(epoch=EPOCH, tick_number=SNAPSHOT, pending=[], applied=[gone])
    assert not ProcessRun.objects.filter(script="chaos_engine").exists()  # a record for no row creates none
