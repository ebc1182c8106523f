"""Engine control in the scaled shape: commands sent to a uvicorn worker reach runtick --no-serve over Redis."""

from __future__ import annotations

import json
import signal
import time

import pytest
from websockets.sync.client import connect

from tests.scaled.test_workers import ORIGIN, until
from tests.support import free_port, http_json, wait_http, without_timestamps

pytestmark = [pytest.mark.scaled, pytest.mark.slow]  # two sites, runtick and a worker: about 12 s

HEADLESS = ("runtick", "--no-serve", "--no-processes", "--seed", "7", "--rate", "400", "--until", "200")


def test_control_through_a_worker_holds_and_steps_runtick_and_the_series_is_unchanged(scaled_site):
    site = scaled_site("controlled").configure(stream={"stale_after": 0.5})
    engine = site.spawn(*HEADLESS[:-4], "--rate", "100", "--until", "200")
    port = free_port()
    worker = site.spawn_server(
        "uvicorn", "-m", "uvicorn", "dawn_site.asgi:application", "--host", "127.0.0.1", "--port", str(port)
    )
    base = f"http://127.0.0.1:{port}"
    try:
        site.wait_for_tick(1, engine)
        wait_http(f"{base}/health/")
        with connect(f"ws://127.0.0.1:{port}/ws", origin=ORIGIN) as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "connection"
            status, paused = http_json("POST", f"{base}/api/engine/control/", {"action": "pause"})
            assert status == 202 and paused["paused"], paused
            at = paused["tick_number"]
            broadcast = until(ws, lambda m: m["type"] == "control")
            assert broadcast["data"]["command"] == paused["command"] and broadcast["data"]["tick_number"] == at

            time.sleep(1.2)  # runtick alone says it is paused: the worker's /health/ must hear it
            status, health = http_json("GET", f"{base}/health/")
            assert status == 200 and health["engine"]["status"] == "paused", health

            ws.send(json.dumps({"type": "control", "action": "step", "ticks": 4, "ref": "s"}))
            # runtick publishes the ack and the stepped ticks through two senders: Redis does not order one
            # against the other, so the ticks may reach the socket before the ack does
            acks, stepped = [], []
            while not acks or len(stepped) < 4:
                message = until(ws, lambda m: m["type"] in ("control_applied", "tick"))
                (acks if message["type"] == "control_applied" else stepped).append(message["data"])
            assert [(a["ref"], a["tick_number"]) for a in acks] == [("s", at)]
            assert [t["tick_number"] for t in stepped] == [at + 1, at + 2, at + 3, at + 4]

            with connect(f"ws://127.0.0.1:{port}/ws", origin=ORIGIN) as late:
                assert json.loads(late.recv(timeout=10))["data"]["paused"] is True

            status, resumed = http_json("POST", f"{base}/api/engine/control/", {"action": "resume"})
            assert status == 202 and resumed["tick_number"] == at + 4
        assert engine.wait(timeout=30) == 0, engine.stderr.read()
        status, journal = http_json("GET", f"{base}/api/engine/control/")
        assert [(r["action"], r["tick_number"], r["by"]) for r in journal["results"]] == [
            ("resume", at + 4, "local play (127.0.0.1)"), ("step", at, "local play (127.0.0.1)"),
            ("pause", at, "local play (127.0.0.1)"),
        ]
    finally:
        worker.send_signal(signal.SIGTERM)
        if engine.poll() is None:
            engine.kill()
        worker.wait(timeout=10)
    reference = scaled_site("reference")
    reference.manage(*HEADLESS)
    assert without_timestamps(site.export()) == without_timestamps(reference.export())
