"""Engine control on a real embedded runtick: REST commands, /health/ while paused, the series of no pause."""

from __future__ import annotations

import time

from tests.support import Site, free_port, http_json, wait_http, without_timestamps


def state_tick(base: str) -> int:
    return http_json("GET", f"{base}/api/state/")[1]["tick_number"]


def test_a_run_paused_stepped_rerated_and_resumed_persists_the_series_of_one_never_paused(tmp_path, reference):
    site = Site(tmp_path).configure(stream={"stale_after": 0.5}).migrate()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = site.spawn(
        "runtick", "--no-processes", "--seed", "7", "--rate", "100", "--until", "400", "--port", str(port)
    )
    try:
        wait_http(f"{base}/health/")
        status, paused = http_json("POST", f"{base}/api/engine/control/", {"action": "pause"})
        assert status == 202, paused
        at = paused["tick_number"]
        assert 0 < at < 400 and paused["paused"] and paused["by"] == "local play (127.0.0.1)"

        time.sleep(1.2)  # more than twice stale_after without a tick
        status, health = http_json("GET", f"{base}/health/")
        assert status == 200 and health["engine"]["status"] == "paused", health
        assert state_tick(base) == at and site.persisted_max() == at  # held, and persisted up to the pause

        status, stepped = http_json("POST", f"{base}/api/engine/control/", {"action": "step", "ticks": 5})
        assert status == 202 and stepped["tick_number"] == at, stepped
        deadline = time.monotonic() + 10
        while state_tick(base) < at + 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        assert state_tick(base) == at + 5

        status, rated = http_json("POST", f"{base}/api/engine/control/", {"action": "rate", "rate": 150})
        assert status == 202 and rated["tick_rate"] == 150 and rated["tick_number"] == at + 5
        status, journal = http_json("GET", f"{base}/api/engine/control/")
        listed = [(r["action"], r["tick_number"]) for r in journal["results"]]
        assert listed == [("rate", at + 5), ("step", at), ("pause", at)]
        status, resumed = http_json("POST", f"{base}/api/engine/control/", {"action": "resume"})
        assert status == 202 and not resumed["paused"]
        assert process.wait(timeout=30) == 0, process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    persisted = site.export()
    assert [t["tick_number"] for t in persisted] == list(range(1, 401))
    assert without_timestamps(persisted) == without_timestamps(reference)
    assert site.control_journal() == [
        ("pause", "applied", at), ("step", "applied", at), ("rate", "applied", at + 5),
        ("resume", "applied", at + 5),
    ]
