"""runtick as a real process: determinism across restarts, clean signals, one engine per database, the live stream."""

import asyncio
import json
import signal
import sqlite3
import subprocess
import time
import urllib.request

import pytest
import websockets

from tests.dawn_site.conftest import HEADLESS
from tests.support import Site, free_port, wait_http, without_timestamps


def test_headless_run_persists_every_tick_once(reference):
    assert [t["tick_number"] for t in reference] == list(range(1, 401))


def test_two_headless_runs_are_identical_apart_from_timestamps(tmp_path, reference):
    site = Site(tmp_path).migrate()
    site.manage(*HEADLESS)
    assert without_timestamps(site.export()) == without_timestamps(reference)


def test_sigterm_then_kill_9_then_resume_reproduces_the_series(tmp_path, reference):
    site = Site(tmp_path).migrate()

    first = site.spawn(*HEADLESS)
    site.wait_for_tick(60, first)
    stopped_at = site.terminate(first)
    assert 60 <= stopped_at < 400

    site.kill_at(stopped_at + 100, site.spawn(*HEADLESS))

    site.manage(*HEADLESS)
    resumed = site.export()
    assert [t["tick_number"] for t in resumed] == list(range(1, 401))
    assert without_timestamps(resumed) == without_timestamps(reference)


def test_a_finished_run_has_nothing_more_to_do(tmp_path):
    site = Site(tmp_path).migrate()
    site.manage("runtick", "--no-serve", "--no-processes", "--rate", "500", "--ticks", "5")
    again = site.manage("runtick", "--no-serve", "--no-processes", "--rate", "500", "--until", "5")
    assert "nothing to do" in again.stdout
    assert len(site.export()) == 5


def test_a_second_runtick_on_the_same_database_refuses(tmp_path):
    site = Site(tmp_path).migrate()
    first = site.spawn("runtick", "--no-serve", "--no-processes", "--rate", "50")
    try:
        site.wait_for_tick(1, first)
        second = site.manage("runtick", "--no-serve", "--no-processes", "--ticks", "3", check=False)
        assert second.returncode != 0
        assert "already running" in second.stderr and "Traceback" not in second.stderr
    finally:
        first.send_signal(signal.SIGINT)
        assert first.wait(timeout=10) == 0


def test_a_second_signal_exits_at_once_when_the_first_shutdown_is_stuck(tmp_path):
    site = Site(tmp_path).migrate()
    process = site.spawn("runtick", "--no-serve", "--no-processes", "--rate", "50")
    site.wait_for_tick(1, process)
    # another writer holds the database: the final flush waits on the busy timeout
    blocker = sqlite3.connect(site.db_path, timeout=10, isolation_level=None)
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        # a few ticks in, so that there is something to save (the lock may have come right after a flush began)
        time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        time.sleep(1.0)
        assert process.poll() is None  # still trying to save
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 128 + signal.SIGTERM
    finally:
        blocker.close()
    assert "exiting at once" in process.stderr.read()


def test_another_seed_on_a_stored_run_is_refused_with_a_way_out(tmp_path):
    site = Site(tmp_path).migrate()
    site.manage("runtick", "--no-serve", "--no-processes", "--seed", "7", "--rate", "500", "--ticks", "3")
    refused = site.manage("runtick", "--no-serve", "--no-processes", "--seed", "8", "--ticks", "3", check=False)
    assert refused.returncode != 0 and "--reset" in refused.stderr
    site.manage("runtick", "--no-serve", "--no-processes", "--seed", "8", "--rate", "500", "--ticks", "3", "--reset")
    assert [t["tick_number"] for t in site.export()] == [1, 2, 3]


@pytest.mark.parametrize("args", [("--rate", "0"), ("--rate", "fast"), ("--ticks", "-3"), ("--port", "99999")])
def test_bad_options_are_readable_errors(tmp_path, args):
    completed = Site(tmp_path).manage("runtick", "--no-serve", *args, check=False)
    assert completed.returncode != 0
    assert "Traceback" not in completed.stderr and "error" in completed.stderr.lower()


def test_a_busy_port_is_a_clear_error_and_nothing_runs(tmp_path):
    import socket

    site = Site(tmp_path).migrate()
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        completed = site.manage("runtick", "--no-processes", "--port", str(port), "--ticks", "3", check=False)
    assert completed.returncode != 0 and f"cannot listen on 127.0.0.1:{port}" in completed.stderr
    assert site.export() == []


def test_embedded_runtick_streams_ticks_and_serves_http_then_exits_cleanly(tmp_path):
    site = Site(tmp_path).migrate()
    port = free_port()
    process = site.spawn("runtick", "--no-processes", "--rate", "20", "--port", str(port))
    try:
        wait_http(f"http://127.0.0.1:{port}/health/")

        async def client():
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws", origin="http://localhost:5173") as ws:
                hello = json.loads(await ws.recv())
                ticks = [json.loads(await ws.recv()) for _ in range(10)]
                return hello, ticks

        hello, messages = asyncio.run(asyncio.wait_for(client(), 20))
        assert hello["type"] == "connection"
        assert all(m["type"] == "tick" for m in messages)
        numbers = [m["data"]["tick_number"] for m in messages]
        assert numbers == list(range(numbers[0], numbers[0] + 10))
        for path in ("/api/state/", "/api/ticks/", "/health/", "/admin/login/"):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
                assert response.status == 200, path
        state = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/state/", timeout=5).read())
        assert state["tick_number"] >= numbers[-1]
    finally:
        process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        code = process.wait(timeout=15)
    assert code == 0, process.stderr.read()
    assert time.monotonic() - started < 8
    assert site.persisted_max() >= numbers[-1]
