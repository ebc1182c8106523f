"""runtick with its tick rules: analyses start on schedule and their results flow back into the stream."""

import sqlite3

from tests.support import Site, free_port


def test_runtick_250_ticks_leaves_scheduled_runs_consolidations_and_impacts(tmp_path):
    site = Site(tmp_path / "busy").migrate()
    site.manage("runtick", "--rate", "100", "--ticks", "250", "--seed", "5", "--port", str(free_port()), timeout=120)
    with sqlite3.connect(site.db_path) as db:
        runs = db.execute(
            "SELECT script, tick_number, status, trigger, applied_at_tick FROM processes_processrun ORDER BY id"
        ).fetchall()
        consolidations = db.execute(
            "SELECT COUNT(*), MIN(source_tick_end), MAX(source_tick_end) FROM processes_memoryconsolidation"
        ).fetchone()
    by_script = {}
    for script, tick, status, trigger, applied in runs:
        by_script.setdefault(script, []).append((tick, status, trigger, applied))
    assert [r[0] for r in by_script["neural_analyzer"]] == [50, 100, 150, 200, 250]
    assert [r[0] for r in by_script["memory_consolidator"]] == [100, 200]
    scheduled = by_script["neural_analyzer"] + by_script["memory_consolidator"]
    assert all(r[1] == "completed" for r in scheduled if r[0] < 250)
    # the last tick's run was still running at the exit: back in the queue, to run again at the next start
    assert [r[1] for r in scheduled if r[0] == 250] == ["queued"]
    assert by_script["neural_analyzer"][0][2] == "every 50 ticks"
    assert consolidations[0] >= 2 and consolidations[1] == 100 and consolidations[2] == 200
    # impacts of runs that finished before the last tick were applied by a later tick
    applied = [r for rows in by_script.values() for r in rows if r[3] is not None]
    assert applied and all(r[3] > r[0] for r in applied)
    ticks = site.export()
    assert len(ticks) == 250
    # a run's name is listed by the ticks that pass while it runs
    active = [t for t in ticks if t["active_processes"]]
    assert active
    for tick in active:
        for script in tick["active_processes"]:
            # only after a rule queued it, and never before
            assert any(queued <= tick["tick_number"] for queued, *_ in by_script[script]), (script, tick["tick_number"])
    assert {"neural_analyzer", "memory_consolidator"} <= set().union(*(t["active_processes"] for t in active))

    # the impacts show in the stream: without processes the same seed gives the same ticks exactly up to
    # the first tick that applied an impact, and from that tick on the state differs
    quiet = Site(tmp_path / "quiet")
    quiet.migrate().manage("runtick", "--rate", "100", "--ticks", "250", "--seed", "5", "--no-serve", "--no-processes")
    first_applied = min(r[3] for r in applied)

    def state(tick):
        return {k: v for k, v in tick.items() if k not in ("timestamp", "active_processes")}

    baseline = quiet.export()
    assert [state(t) for t in ticks[: first_applied - 1]] == [state(t) for t in baseline[: first_applied - 1]]
    assert ticks[first_applied - 1]["scup"] != baseline[first_applied - 1]["scup"]
