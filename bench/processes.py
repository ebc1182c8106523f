"""Process benchmark: DAWN embedded, runs posted over HTTP, their progress followed on /ws.

Prints the POST-to-running latency (p50/p99; the client's clock from sending the POST to the `running`
event arriving on the socket) and the run throughput (runs posted at once, completed per second at
`processes.max_concurrent`).
"""

from __future__ import annotations

import json
import time
import urllib.request

import numpy as np
from websockets.sync.client import connect

from bench.common import dawn

SCRIPT = "neural_analyzer"


def post_run(base: str) -> dict:
    request = urllib.request.Request(
        f"{base}/api/runs/", data=json.dumps({"script": SCRIPT}).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def next_event(ws, deadline: float) -> dict | None:
    while time.monotonic() < deadline:
        message = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        if message["type"] == "process":
            return message["data"]
    return None


def run_processes(latency_runs: int, burst: int) -> dict:
    with dawn() as site:
        base = site.base
        with connect(site.ws_url, origin="http://localhost:5173", max_size=None) as ws:
            # one run at a time: how long from the POST until the run is running
            latencies, server_side = [], []
            for _ in range(latency_runs + 2):
                sent = time.perf_counter()
                run = post_run(base)
                running_at = None
                deadline = time.monotonic() + 60
                while (event := next_event(ws, deadline)) is not None:
                    if event["process_id"] != run["process_id"]:
                        continue
                    if event["status"] == "running" and running_at is None:
                        running_at = time.perf_counter()
                        server_side.append(event["start_time"] - event["created_at"])
                    elif event["status"] not in ("queued", "running"):
                        break
                if running_at is None or event is None or event["status"] != "completed":
                    raise SystemExit(f"run {run['process_id']} did not complete: {event}")
                latencies.append(running_at - sent)
            latencies, server_side = latencies[2:], server_side[2:]  # the first runs warm the launcher up

            # throughput: a burst of runs posted at once, queued and run three at a time
            started = time.perf_counter()
            pending = {post_run(base)["process_id"] for _ in range(burst)}
            posted = time.perf_counter() - started
            failed = 0
            deadline = time.monotonic() + 300
            while pending and (event := next_event(ws, deadline)) is not None:
                if event["process_id"] in pending and event["status"] not in ("queued", "running"):
                    pending.discard(event["process_id"])
                    failed += event["status"] != "completed"
            elapsed = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    return {
        "script": SCRIPT,
        "latency_runs": latency_runs,
        "post_to_running_p50_ms": float(np.percentile(ms, 50)),
        "post_to_running_p99_ms": float(np.percentile(ms, 99)),
        "created_to_started_p50_ms": float(np.percentile(np.array(server_side) * 1000, 50)),
        "burst": burst,
        "burst_post_s": posted,
        "burst_unfinished": len(pending),
        "burst_failed": failed,
        "runs_per_s": (burst - len(pending)) / elapsed,
    }


def print_processes(result: dict) -> None:
    print(
        f"process {result['script']}, {result['latency_runs']} runs one at a time: POST to running "
        f"p50 {result['post_to_running_p50_ms']:.1f} ms, p99 {result['post_to_running_p99_ms']:.1f} ms "
        f"(created to started on the server p50 {result['created_to_started_p50_ms']:.1f} ms) | "
        f"{result['burst']} posted at once: {result['runs_per_s']:.1f} runs/s, "
        f"{result['burst_failed']} failed, {result['burst_unfinished']} unfinished",
        flush=True,
    )
