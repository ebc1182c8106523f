"""A uvicorn worker killed (kill -9) under 50 clients and started again on its port, in the scaled shape
(runtick --no-serve, PostgreSQL, Redis): every client reconnects by itself and resumes with no gap."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
import time

import pytest

from dawn_client import DawnClient
from tests.scaled.test_workers import ORIGIN
from tests.support import free_port, wait_http

pytestmark = [pytest.mark.scaled, pytest.mark.slow]

CLIENTS = 50
RATE = 10


class Crowd:
    """CLIENTS DawnClients on an event loop of their own (a thread), each keeping every tick_number it got."""

    def __init__(self, url: str) -> None:
        self.clients = [DawnClient(url, binary=n % 2 == 0, origin=ORIGIN) for n in range(CLIENTS)]
        self.numbers: list[list[int]] = [[] for _ in self.clients]
        self.errors: list[BaseException] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._tasks = [asyncio.run_coroutine_threadsafe(self._follow(n), self._loop) for n in range(CLIENTS)]

    async def _follow(self, n: int) -> None:
        try:
            async with contextlib.aclosing(self.clients[n].ticks()) as ticks:
                async for tick in ticks:
                    self.numbers[n].append(tick["tick_number"])
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self.errors.append(exc)

    def newest(self) -> list[int]:
        return [numbers[-1] if numbers else 0 for numbers in self.numbers]

    def wait_all_past(self, number: int, timeout: float) -> float:
        started = time.monotonic()
        while min(self.newest()) < number:
            assert not self.errors, self.errors
            assert time.monotonic() - started < timeout, f"behind {number}: {sorted(self.newest())[:5]}"
            time.sleep(0.1)
        return time.monotonic() - started

    def close(self) -> None:
        """Stop every client, and whatever tasks their sockets still run, before the loop stops."""
        asyncio.run_coroutine_threadsafe(self._cancel_all(), self._loop).result(timeout=15)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    @staticmethod
    async def _cancel_all() -> None:
        for _ in range(2):  # the followers first; then what closing their sockets left running
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def test_a_worker_killed_under_50_clients_and_restarted_resumes_each_with_no_gap(scaled_site):
    site = scaled_site("restarted")
    engine = site.spawn_server(
        "runtick", "manage.py", "runtick", "--no-serve", "--no-processes", "--rate", str(RATE), "--progress", "0"
    )
    port = free_port()
    worker_args = (
        "-m", "uvicorn", "dawn_site.asgi:application", "--host", "127.0.0.1", "--port", str(port),
        "--ws", "dawn_site.server:DawnWebSocketProtocol", "--ws-per-message-deflate", "false", "--no-access-log",
    )
    worker = site.spawn_server("worker-1", *worker_args)
    crowd = None
    try:
        wait_http(f"http://127.0.0.1:{port}/health/")
        crowd = Crowd(f"ws://127.0.0.1:{port}/ws")
        crowd.wait_all_past(max(crowd.newest()) + 1, timeout=30)
        crowd.wait_all_past(max(crowd.newest()) + 20, timeout=30)  # two seconds of stream for everyone

        worker.send_signal(signal.SIGKILL)  # no close frame: the clients see the connection drop
        worker.wait(timeout=10)
        killed_at = max(crowd.newest())
        time.sleep(2)  # the stream goes on without them: these ticks must come back by resume
        worker = site.spawn_server("worker-2", *worker_args)
        wait_http(f"http://127.0.0.1:{port}/health/")
        took = crowd.wait_all_past(killed_at + 5 * RATE, timeout=60)
        print(f"{CLIENTS} clients past tick {killed_at + 5 * RATE} {took:.1f} s after the new worker answered")
        assert not crowd.errors, crowd.errors
        for client, numbers in zip(crowd.clients, crowd.numbers):
            first = numbers[0]
            assert numbers == list(range(first, first + len(numbers))), "a gap or a duplicate at the restart"
            assert client.stats.reconnects >= 1 and client.stats.resumes >= 1, client.stats
            assert client.stats.resume_failures == 0, client.stats
    finally:
        if crowd is not None:
            crowd.close()
        worker.terminate()
        engine.terminate()
        worker.wait(timeout=10)
        assert engine.wait(timeout=15) == 0, site.log("runtick")[-3000:]
    for name in ("runtick", "worker-2"):
        assert "Traceback" not in site.log(name), site.log(name)[-5000:]
