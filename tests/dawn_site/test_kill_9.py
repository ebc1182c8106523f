"""kill -9 of a serving runtick, its analysis processes on, at twenty random moments in a row."""

import asyncio
import math
import random
import sqlite3
import threading
import time

import pytest

from dawn_client import DawnClient
from tests.support import Descendants, Site, free_port

RATE = 20
FLUSH_S = 0.5
# What a kill may cost: the ticks of one flush interval, and one more (as runtick's resume allows to discard).
# A kill just before a write commits also loses the ticks made during the write: the one tick more (50 ms
# here) covers that, a flush's write taking 10 to 20 ms on the 2-core machine.
LOST_MAX = math.ceil(RATE * FLUSH_S) + 1
KILLS = 20
# the shipped rules, fired more often, so that kills find runs under way
TRIGGERS = {
    "neural_analyzer": 5,
    "memory_consolidator": 10,
    "chaos_engine": {"entropy_below": 0.2, "cooldown": 50},
    "dream_generator": {"mood": "contemplative", "cooldown": 100},
    "consciousness_processor": {"scup_change": 2.0, "window": 20, "cooldown": 30},
}


class Stream:
    """The project's client on a thread of its own: every tick number it hands on, across the restarts."""

    def __init__(self, url: str) -> None:
        self.client = DawnClient(url, backoff_base=0.05, backoff_cap=0.2)
        self.numbers: list[int] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._read(),), daemon=True)
        self._thread.start()

    async def _read(self) -> None:
        self._task = asyncio.current_task()
        try:
            async for tick in self.client.ticks():
                self.numbers.append(tick["tick_number"])
        except asyncio.CancelledError:
            pass

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(10)


def query(site: Site, sql: str, *args) -> list[tuple]:
    with sqlite3.connect(site.db_path, timeout=10) as db:
        return db.execute(sql, args).fetchall()


def runs_running(site: Site) -> list[tuple]:
    return query(site, "SELECT id, tick_number, start_time FROM processes_processrun WHERE status = 'running'")


def wait_while(done, tree: Descendants, pid: int, timeout: float = 30) -> None:
    """Poll `done()` until true, watching runtick's process tree meanwhile."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "runtick did not get there in time"
        tree.watch(pid)
        time.sleep(0.01)


@pytest.mark.slow
def test_twenty_kill_9s_in_a_row_lose_at_most_a_flush_interval_each_and_leave_nothing_behind(tmp_path):
    site = Site(tmp_path).configure(
        consciousness={"tick_rate": RATE},
        persistence={"flush_interval": FLUSH_S},
        processes={"auto_triggers": TRIGGERS},
    ).migrate()
    port = free_port()
    stream = Stream(f"ws://127.0.0.1:{port}/ws")
    rng = random.Random(9)

    def runtick(name: str):
        return site.spawn_server(name, "manage.py", "runtick", "--port", str(port), "--progress", "0")

    tree = Descendants()
    # (run, its tick, its start, the snapshot resumed from) of the runs a kill left running
    killed_running: list[tuple[int, int, str, int]] = []
    epochs, losses, mid_run = set(), [], 0
    process = None
    try:
        for kill in range(KILLS):
            before, stale = site.persisted_max(), set(runs_running(site))  # stale: left by the last kill
            process = runtick(f"runtick-{kill}")
            spawned = time.monotonic()
            if kill % 4 == 3:  # while a run is under way
                wait_while(lambda: set(runs_running(site)) - stale, tree, process.pid)
                moment = time.monotonic() + rng.uniform(0, 0.03)
            elif rng.random() < 0.25:  # anywhere in the start-up: resume, dispatcher, launcher, server
                moment = spawned + rng.uniform(0.05, 1.5)
            else:  # ticking
                wait_while(lambda: site.persisted_max() > before, tree, process.pid)
                moment = time.monotonic() + rng.uniform(0, 1.5)
            wait_while(lambda: time.monotonic() >= moment, tree, process.pid)
            persisted = site.persisted_max()
            tree.watch(process.pid)
            process.kill()
            process.wait(10)
            time.sleep(0.1)  # what was on the wire reaches the client
            seen = stream.client.last

            assert not tree.gone(within=5), "processes outlived runtick"
            assert query(site, "PRAGMA integrity_check") == [("ok",)]
            snapshot = query(site, "SELECT tick_number, epoch FROM consciousness_enginesnapshot")
            if not snapshot:
                continue  # killed before its first flush: there is nothing to resume yet
            [(resumed_at, epoch)] = snapshot
            epochs.add(epoch)
            # what was committed stays, and the snapshot covers every persisted tick (the flush is atomic)
            assert resumed_at >= persisted and site.persisted_max() == resumed_at
            if seen is not None:
                losses.append(seen - resumed_at)
                assert seen - resumed_at <= LOST_MAX, f"kill {kill}: streamed {seen}, resumed from {resumed_at}"
            running = set(runs_running(site)) - stale
            mid_run += bool(running)
            killed_running += [(run, tick, start, resumed_at) for run, tick, start in running]

        process = runtick("runtick-final")
        target = max(stream.client.last or 0, site.persisted_max()) + 2 * LOST_MAX
        wait_while(lambda: min(stream.client.last or 0, site.persisted_max()) >= target, tree, process.pid)
        process.terminate()
        assert process.wait(10) == 0, site.log("runtick-final")
    finally:
        stream.close()
        if process is not None and process.poll() is None:
            process.kill()
        for left in tree.alive():
            left.kill()

    assert len(epochs) == 1 and mid_run >= KILLS // 4
    # the client, resuming after every restart, saw each tick once and missed none
    numbers = stream.numbers
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    assert stream.client.stats.resume_failures == 0
    top = site.persisted_max()
    assert query(site, "SELECT COUNT(*), MIN(tick_number) FROM consciousness_tick") == [(top, 1)]
    assert query(site, "PRAGMA integrity_check") == [("ok",)]
    assert not runs_running(site)

    # a run a kill left running is abandoned if its tick came after the snapshot resumed from; else run again
    for run, tick, start, resumed_at in killed_running:
        [(status, reason, start_now)] = query(
            site, "SELECT status, reason, start_time FROM processes_processrun WHERE id = ?", run
        )
        if tick > resumed_at:
            assert status == "abandoned" and reason.startswith("superseded"), (run, status, reason)
        else:
            assert status != "abandoned" and start_now != start, (run, status, reason)
    # one live run per rule firing, and each consolidation once, by a completed run
    assert not query(
        site,
        "SELECT script, trigger, tick_number FROM processes_processrun WHERE reason NOT LIKE 'superseded%' "
        "GROUP BY script, trigger, tick_number HAVING COUNT(*) > 1",
    )
    assert query(site, "SELECT COUNT(*) FROM processes_memoryconsolidation")[0][0] > 0
    assert not query(
        site,
        "SELECT source_tick_start, source_tick_end FROM processes_memoryconsolidation "
        "GROUP BY source_tick_start, source_tick_end HAVING COUNT(DISTINCT run_id) > 1",
    )
    assert not query(
        site,
        "SELECT c.id FROM processes_memoryconsolidation c JOIN processes_processrun r ON r.id = c.run_id "
        "WHERE r.status != 'completed'",
    )
    print(f"losses per kill (ticks): {losses}; kills with runs under way: {mid_run}; top tick {top}")
