"""SIGTERM with a backlog of queued runs: runtick exits within 5 s, and the backlog waits for the next start."""

import signal
import sqlite3
import time

from tests.support import Site, free_port, wait_http

QUEUED = 300
# the backlog is posted by many users: one poster's (and the default overall) bound would refuse it
QUEUE = (
    "from processes import services\n"
    "from django.conf import settings\n"
    "settings.DAWN_CONFIG['processes']['max_queued'] = 10_000\n"
    f"for _ in range({QUEUED}): services.run_create(script='neural_analyzer', wake=False)\n"
)


def statuses(site: Site) -> dict[str, int]:
    with sqlite3.connect(site.db_path) as db:
        return dict(db.execute("SELECT status, COUNT(*) FROM processes_processrun GROUP BY status").fetchall())


def test_sigterm_with_300_queued_runs_exits_within_5_s_and_leaves_them_queued(tmp_path):
    site = Site(tmp_path).migrate()
    site.manage("shell", "-c", QUEUE)
    port = free_port()
    process = site.spawn("runtick", "--no-processes", "--rate", "10", "--port", str(port))
    try:
        wait_http(f"http://127.0.0.1:{port}/health/")
        deadline = time.monotonic() + 30
        while statuses(site).get("completed", 0) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)  # the dispatcher is busy: some runs done, three running, the rest queued
    finally:
        process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        code = process.wait(timeout=30)
        took = time.monotonic() - signalled
    assert code == 0, process.stderr.read()
    assert took < 5.0, f"runtick took {took:.2f} s to stop"
    after = statuses(site)
    assert "running" not in after and after.get("abandoned", 0) == 0
    assert after["queued"] >= QUEUED - after["completed"] - after.get("failed", 0) > 250
    # the runs stopped by the shutdown are queued again, with the tick they analyse: the next start reruns them
    with sqlite3.connect(site.db_path) as db:
        interrupted = db.execute(
            "SELECT COUNT(*) FROM processes_processrun WHERE status = 'queued' AND reason LIKE 'interrupted%'"
        ).fetchone()[0]
    assert interrupted >= 1
    print(f"stopped in {took:.2f} s with {after['queued']} runs queued")
