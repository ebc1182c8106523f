"""runtick with its analysis processes on: a batch run is exactly reproducible, across SIGTERM and kill -9."""

import sqlite3

import pytest

from tests.support import Site, without_timestamps

# the shipped auto_triggers: every analysis fires (the dream after the consolidations), some more than once
BATCH = ("runtick", "--no-serve", "--seed", "7", "--rate", "max", "--until", "600")


def consolidations(site: Site) -> list[tuple]:
    with sqlite3.connect(site.db_path) as db:
        return db.execute(
            "SELECT r.tick_number, c.label, c.weight, c.support, c.source_tick_start, c.source_tick_end, c.centroid "
            "FROM processes_memoryconsolidation c JOIN processes_processrun r ON r.id = c.run_id "
            "ORDER BY r.tick_number, c.label"
        ).fetchall()


def live_runs(site: Site) -> list[tuple]:
    """(script, trigger tick, due tick, applied at, impact) of the runs that were not superseded."""
    with sqlite3.connect(site.db_path) as db:
        return db.execute(
            "SELECT script, tick_number, impact_due_tick, applied_at_tick, consciousness_impact, status "
            "FROM processes_processrun WHERE reason NOT LIKE 'superseded%' ORDER BY tick_number, script"
        ).fetchall()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted batch run with processes: the ticks, runs and consolidations every other must equal."""
    site = Site(tmp_path_factory.mktemp("reference")).migrate()
    site.manage(*BATCH)
    return site


def test_the_reference_applies_every_impact_at_its_due_tick(reference):
    runs = live_runs(reference)
    assert {r[0] for r in runs} >= {"neural_analyzer", "memory_consolidator", "dream_generator"}
    applied = [r for r in runs if r[3] is not None]
    assert len(applied) > 10 and all(r[3] == r[2] == r[1] + 10 for r in applied)
    assert len(consolidations(reference)) >= 5


def test_two_batch_runs_with_processes_are_identical_apart_from_timestamps(tmp_path, reference):
    site = Site(tmp_path).migrate()
    site.manage(*BATCH)
    assert without_timestamps(site.export()) == without_timestamps(reference.export())
    assert live_runs(site) == live_runs(reference)


def test_sigterm_and_kill_9_then_resume_with_processes_reproduce_ticks_runs_and_consolidations(tmp_path, reference):
    site = Site(tmp_path).migrate()
    first = site.spawn(*BATCH)
    site.wait_for_tick(100, first)
    stopped_at = site.terminate(first)
    assert stopped_at < 600
    for step in (40, 90, 150):  # kill -9 wherever it lands: mid-run, mid-flush, mid-wait
        site.kill_at(min(stopped_at + step, 590), site.spawn(*BATCH))
    site.manage(*BATCH)

    resumed = site.export()
    assert [t["tick_number"] for t in resumed] == list(range(1, 601))
    assert without_timestamps(resumed) == without_timestamps(reference.export())
    assert live_runs(site) == live_runs(reference)
    # no duplicate consolidation: each tick range consolidated once, by one live run
    assert consolidations(site) == consolidations(reference)
    with sqlite3.connect(site.db_path) as db:
        ranges = db.execute(
            "SELECT source_tick_start, source_tick_end, COUNT(DISTINCT run_id) FROM processes_memoryconsolidation "
            "GROUP BY source_tick_start, source_tick_end"
        ).fetchall()
    assert ranges and all(count == 1 for _start, _end, count in ranges)
