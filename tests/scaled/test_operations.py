"""The scaled shape's operations: a uvicorn worker serves the styled admin and its own /metrics; runtick --no-serve
serves the engine's metrics on --metrics-port. The commands are the README's and compose.yaml's."""

from __future__ import annotations

import json
import signal
import time
import urllib.request

import pytest
from websockets.sync.client import connect

from tests.support import free_port, wait_http
from tests.test_operations import ORIGIN, scrape, stylesheet_check, total

pytestmark = pytest.mark.scaled


def test_a_worker_serves_the_admin_styled_and_each_process_its_own_metrics(scaled_site):
    site = scaled_site().collectstatic()
    metrics_port, worker_port = free_port(), free_port()
    engine = site.spawn("runtick", "--no-serve", "--no-processes", "--metrics-port", str(metrics_port))
    worker = site.spawn_server(
        "uvicorn", "-m", "uvicorn", "dawn_site.asgi:application", "--host", "127.0.0.1", "--port", str(worker_port),
        "--ws", "websockets-sansio", "--ws-per-message-deflate", "false",
    )
    base, engine_metrics = f"http://127.0.0.1:{worker_port}", f"http://127.0.0.1:{metrics_port}/metrics"
    try:
        site.wait_for_tick(1, engine)
        wait_http(f"{base}/health/")
        stylesheet_check(base)

        request = urllib.request.Request(
            f"{base}/api/runs/", data=b'{"script": "neural_analyzer"}', headers={"Content-Type": "application/json"}
        )
        urllib.request.urlopen(request, timeout=10).close()
        first = scrape(engine_metrics)
        with connect(f"ws://127.0.0.1:{worker_port}/ws", origin=ORIGIN) as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "connection"
            ws.recv(timeout=10)
            served = scrape(f"{base}/metrics")
            time.sleep(1.2)
            second = scrape(engine_metrics)
        # the engine's figures come from runtick, the stream's from the worker that holds the sockets
        assert total(second, "dawn_ticks_total") > total(first, "dawn_ticks_total")
        assert total(second, "dawn_history_flushed_ticks_total") > total(first, "dawn_history_flushed_ticks_total")
        assert any(dict(labels)["script"] == "neural_analyzer" for labels in second["dawn_runs"])
        assert "dawn_stream_clients" not in second
        assert total(served, "dawn_stream_clients") == 1 and total(served, "dawn_stream_frames_sent_total") >= 1
        assert "dawn_ticks_total" not in served
    finally:
        worker.send_signal(signal.SIGTERM)
        engine.send_signal(signal.SIGTERM)
        code = engine.wait(timeout=15)
        try:
            worker.wait(timeout=10)
        except Exception:
            worker.kill()
    assert code == 0, engine.stderr.read()
    assert "Traceback" not in site.log("uvicorn")
