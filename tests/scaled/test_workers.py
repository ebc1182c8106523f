"""The scaled shape end to end: runtick alone, one uvicorn and one Daphne worker, PostgreSQL and Redis."""

from __future__ import annotations

import json
import signal
import time
import urllib.request

import pytest
from websockets.sync.client import connect

from tests.support import free_port, wait_http

pytestmark = pytest.mark.scaled

ORIGIN = "http://localhost:5173"


def http(method: str, url: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())


def ticks(ws, count: int) -> list[dict]:
    """The next `count` ticks on the socket; other messages are skipped."""
    found = []
    while len(found) < count:
        message = json.loads(ws.recv(timeout=10))
        if message["type"] == "tick":
            found.append(message["data"])
    return found


def until(ws, predicate, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        if predicate(message):
            return message
    raise AssertionError("the awaited message never came")


def test_workers_under_uvicorn_and_daphne_serve_one_engine_over_redis(scaled_site):
    site = scaled_site()
    engine = site.spawn("runtick", "--no-serve", "--no-processes", "--rate", "10")
    ports = {"uvicorn": free_port(), "daphne": free_port()}
    workers = {
        "uvicorn": site.spawn_server(
            "uvicorn", "-m", "uvicorn", "dawn_site.asgi:application", "--host", "127.0.0.1", "--port", str(ports["uvicorn"])
        ),
        "daphne": site.spawn_server(
            "daphne", "-m", "daphne", "-b", "127.0.0.1", "-p", str(ports["daphne"]), "dawn_site.asgi:application"
        ),
    }
    base = {name: f"127.0.0.1:{port}" for name, port in ports.items()}
    try:
        site.wait_for_tick(1, engine)
        for name in workers:
            wait_http(f"http://{base[name]}/health/")
        with connect(f"ws://{base['uvicorn']}/ws", origin=ORIGIN) as left, connect(f"ws://{base['daphne']}/ws", origin=ORIGIN) as right:
            assert json.loads(left.recv(timeout=10))["type"] == "connection"
            assert json.loads(right.recv(timeout=10))["type"] == "connection"

            # both workers relay the one engine's ticks, in order, the same tick alike
            seen = {"uvicorn": ticks(left, 8), "daphne": ticks(right, 8)}
            for stream in seen.values():
                numbers = [t["tick_number"] for t in stream]
                assert numbers == list(range(numbers[0], numbers[0] + 8))
            by_number = {name: {t["tick_number"]: t for t in stream} for name, stream in seen.items()}
            common = by_number["uvicorn"].keys() & by_number["daphne"].keys()
            assert common
            n = min(common)
            assert by_number["uvicorn"][n] == by_number["daphne"][n]

            # a stimulus sent through one worker reaches the engine and is acknowledged by the tick that applied it
            left.send(json.dumps({"type": "stimulus", "kind": "excite", "intensity": 0.7, "ref": "from-uvicorn"}))
            ack = until(left, lambda m: m["type"] == "stimulus_applied")
            assert ack["data"]["ref"] == "from-uvicorn" and ack["data"]["tick_number"] > n

            # a run posted to the Daphne worker is executed by runtick; its events reach the uvicorn clients
            status, run = http("POST", f"http://{base['daphne']}/api/runs/", {"script": "neural_analyzer"})
            assert status == 202 and run["status"] == "queued"
            done = until(
                left,
                lambda m: m["type"] == "process"
                and m["data"]["process_id"] == run["process_id"]
                and m["data"]["status"] not in ("queued", "running"),
            )
            assert done["data"]["status"] == "completed", done["data"]["reason"]
            status, stored = http("GET", f"http://{base['uvicorn']}/api/runs/{run['id']}/")
            assert stored["status"] == "completed" and stored["output"]["metrics"]

        for name in workers:
            status, state = http("GET", f"http://{base[name]}/api/state/")
            assert status == 200 and state["tick_number"] >= n
            status, health = http("GET", f"http://{base[name]}/health/")
            assert status == 200
    finally:
        for worker in workers.values():
            worker.send_signal(signal.SIGTERM)
        engine.send_signal(signal.SIGTERM)
        code = engine.wait(timeout=15)
        for worker in workers.values():
            try:
                worker.wait(timeout=10)
            except Exception:
                worker.kill()
    assert code == 0, engine.stderr.read()
