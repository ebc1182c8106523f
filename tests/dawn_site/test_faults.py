"""Faults injected for real into a running embedded DAWN: the database write-locked for 10 s and 30 s by a
second SQLite connection, and its filesystem full (a tmpfs of its own, filled to the last byte)."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from django.conf import settings

from tests.support import ROOT, Site, StreamWatch, free_port, health, health_until, run_post, wait_http
from tests.test_operations import scrape, total

pytestmark = pytest.mark.slow

RATE = 10


def persisted_numbers(site: Site) -> list[int]:
    with sqlite3.connect(f"file:{site.db_path}?mode=ro", uri=True, timeout=10) as conn:
        rows = conn.execute("SELECT tick_number FROM consciousness_tick ORDER BY tick_number")
        return [row[0] for row in rows]


def snapshot_tick(site: Site) -> int:
    with sqlite3.connect(f"file:{site.db_path}?mode=ro", uri=True, timeout=10) as conn:
        return conn.execute("SELECT tick_number FROM consciousness_enginesnapshot").fetchone()[0]


def start(site: Site) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = site.spawn_server(
        "runtick", "manage.py", "runtick", "--port", str(port), "--rate", str(RATE), "--no-processes",
        "--progress", "0",
    )
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/health/")
    health_until(base, lambda status, _body: status == 200, 30)
    return process, base


def stop(site: Site, process: subprocess.Popen) -> None:
    process.terminate()
    assert process.wait(timeout=15) == 0, site.log("runtick")[-3000:]


def test_a_database_write_locked_for_10_then_30_s_loses_no_tick_and_health_and_writes_say_so(tmp_path):
    bound = settings.DATABASE_LOCK_TIMEOUT_S
    site = Site(tmp_path).migrate()
    process, base = start(site)
    watch = StreamWatch(f"ws://{base[7:]}/ws")
    try:
        for hold in (10, 30):
            holder = sqlite3.connect(site.db_path, isolation_level=None, timeout=10)
            holder.execute("BEGIN IMMEDIATE")  # a real second writer holds the write lock
            locked_at = time.monotonic()
            # within a write's lock timeout plus a flush interval, /health/ names persistence (and the writes)
            took, body = health_until(
                base, lambda status, body: status == 503 and "persistence" in body["failing"], bound + 5
            )
            assert body["persistence"]["status"] in ("failing", "behind")
            assert body["persistence"]["backlog_ticks"] > 0
            assert body["database"]["fault"] == "locked" and body["engine"]["status"] == "ticking"
            assert body["channel_layer"]["status"] == "ok"
            status, headers, answer, waited = run_post(base)
            assert status == 503 and headers["Retry-After"] == str(settings.DATABASE_RETRY_AFTER_S), answer
            assert "the database (locked)" in answer["error"] and waited < bound + 2
            print(f"lock {hold} s: /health/ 503 after {took:.1f} s; POST /api/runs/ 503 after {waited:.1f} s")
            time.sleep(max(0.0, locked_at + hold - time.monotonic()))
            backlog = health(base)[1]["persistence"]["backlog_ticks"]
            holder.rollback()
            holder.close()
            released_at = time.monotonic()
            streamed = watch.between(locked_at, released_at)
            assert len(streamed) >= 0.8 * RATE * hold, len(streamed)  # ticking and broadcast went on
            assert backlog >= 0.8 * RATE * (hold - bound)
            took, body = health_until(base, lambda status, body: status == 200, bound + 5)
            print(f"lock {hold} s: {len(streamed)} ticks streamed meanwhile, {backlog} waiting at the end; "
                  f"200 again {took:.1f} s after the release")
            assert body["persistence"]["dropped_ticks"] == 0 and body["persistence"]["failures"] >= 1
    finally:
        watch.close()
        stop(site, process)
    numbers = persisted_numbers(site)
    assert numbers == list(range(1, numbers[-1] + 1))  # every tick once, consecutive: nothing lost
    assert snapshot_tick(site) == numbers[-1]
    assert {number for _at, number in watch.ticks} <= set(numbers)
    assert "were dropped" not in site.log("runtick")


@pytest.fixture
def small_filesystem(tmp_path):
    """A 24 MB tmpfs of the test's own for the database (the logs stay outside it)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    try:
        command = ["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)]
        subprocess.run(command, check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.fail(f"cannot mount a tmpfs here (the test runs as root): {exc}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(mount: Path) -> Path:
    """Write a file until the filesystem has not a byte left."""
    filler = mount / "filler"
    with open(filler, "wb", buffering=0) as out:
        for size in (65536, 1):
            try:
                while out.write(b"\0" * size):
                    pass
            except OSError:
                pass
    return filler


def test_a_full_disk_keeps_the_engine_ticking_bounds_the_buffer_and_flushes_once_space_is_freed(
    tmp_path, small_filesystem
):
    max_backlog = 40  # 4 s of ticks: the fault lasts longer, so the bound is reached and the oldest go
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["persistence"]["max_backlog"] = max_backlog
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    site = Site(tmp_path / "site", db_path=small_filesystem / "dawn.sqlite3")
    site.env["DAWN_CONFIG"] = str(tmp_path / "config.yaml")
    site.migrate()
    process, base = start(site)
    watch = StreamWatch(f"ws://{base[7:]}/ws")
    try:
        site.wait_for_tick(20, process)  # a history before the fault, so that a gap would show
        filler = fill(small_filesystem)
        full_at = time.monotonic()
        took, body = health_until(base, lambda status, body: "persistence" in body["failing"], 10)
        assert body["persistence"]["status"] == "failing" and "full" in body["persistence"]["last_error"]
        assert body["engine"]["status"] == "ticking"
        status, headers, answer, _waited = run_post(base)
        assert status == 503 and "the database (disk full)" in answer["error"] and headers["Retry-After"]
        print(f"disk full: /health/ 503 after {took:.1f} s")
        time.sleep(8)
        _status, body = health(base)
        assert body["persistence"]["backlog_ticks"] <= max_backlog + 2 * RATE  # plus what arrives during a write
        assert body["persistence"]["dropped_ticks"] > 0
        filler.unlink()
        freed_at = time.monotonic()
        assert len(watch.between(full_at, freed_at)) >= 0.8 * RATE * (freed_at - full_at)
        took, body = health_until(base, lambda status, body: status == 200, 10)
        print(f"disk freed: 200 again after {took:.1f} s")
        dropped = total(scrape(f"{base}/metrics"), "dawn_history_dropped_ticks_total")
    finally:
        watch.close()
        stop(site, process)
    numbers = persisted_numbers(site)
    log = site.log("runtick")
    ranges = re.findall(r"ticks (\d+)\.\.(\d+) \((\d+)\) were dropped unpersisted", log)
    assert len(ranges) == 1, log[-3000:]  # one episode, its range logged once
    first, last, count = map(int, ranges[0])
    assert count == last - first + 1 == dropped
    # everything but the dropped range is there, once; the snapshot covers the newest and nothing beyond
    assert numbers == [n for n in range(1, numbers[-1] + 1) if not first <= n <= last]
    assert snapshot_tick(site) == numbers[-1]
    assert "Traceback" not in log
