"""Process benchmark: DAWN embedded, runs posted over HTTP, their progress followed on /ws; then the sandbox alone.

Prints the POST-to-running latency (p50/p99; the client's clock from sending the POST to the `running`
event arriving on the socket) and the run throughput (runs posted at once, completed per second at
`processes.max_concurrent`). Then the sandbox's own start, warm (forked by the launcher) against cold (a
fresh interpreter): the same script on the same engine context, run one at a time by a Runner, timed from
execute() to the script's first progress line (its imports done, run() begun) and to the end of execute().
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request

import numpy as np
from websockets.sync.client import connect

from bench.common import ROOT, dawn
from consciousness.engine import Engine, EngineConfig, StepInputs
from processes.sandbox import Outcome, Runner, ScriptSpec

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


def _percentiles(name: str, seconds: list[float]) -> dict:
    ms = np.array(seconds) * 1000
    return {f"{name}_p50_ms": float(np.percentile(ms, 50)), f"{name}_p99_ms": float(np.percentile(ms, 99))}


async def _sandbox_starts(warm: bool, runs: int, request: dict) -> dict:
    runner = Runner({SCRIPT: ScriptSpec(SCRIPT, f"processes.scripts.{SCRIPT}")}, cwd=ROOT, warm=warm)
    await runner.start()
    if warm and runner.launcher_pid is None:
        raise SystemExit("the launcher did not start: no warm figures")
    first_line, total = [], []
    try:
        for _ in range(runs + 1):
            lines: list[float] = []
            sent = time.perf_counter()
            execution = await runner.execute(SCRIPT, request, on_line=lambda line: lines.append(time.perf_counter()))
            if execution.status != Outcome.COMPLETED or not lines:
                raise SystemExit(f"{SCRIPT} did not complete ({'warm' if warm else 'cold'}): {execution.reason}")
            first_line.append(lines[0] - sent)
            total.append(time.perf_counter() - sent)
    finally:
        await runner.close()
    # the first run of each pays for the page cache, not for the start
    return {**_percentiles("first_line", first_line[1:]), **_percentiles("execute", total[1:])}


def run_sandbox(runs: int) -> dict:
    """Warm against cold starts of SCRIPT, `runs` each, on the context of an engine 150 ticks in."""
    engine = Engine(EngineConfig.from_mapping({"seed": 11}))
    for i in range(150):
        engine.advance(StepInputs(timestamp=1.0 + i / 10))
    request = {"parameters": {}, "seed": 1, "context": engine.context(128)}
    warm = asyncio.run(_sandbox_starts(True, runs, request))
    cold = asyncio.run(_sandbox_starts(False, runs, request))
    return {
        "script": SCRIPT,
        "runs": runs,
        "warm": warm,
        "cold": cold,
        "first_line_ratio": cold["first_line_p50_ms"] / warm["first_line_p50_ms"],
        "execute_ratio": cold["execute_p50_ms"] / warm["execute_p50_ms"],
    }


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
        "sandbox": run_sandbox(latency_runs),
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
    sandbox = result["sandbox"]
    warm, cold = sandbox["warm"], sandbox["cold"]
    print(
        f"sandbox {sandbox['script']}, {sandbox['runs']} runs each: execute() to first line warm "
        f"p50 {warm['first_line_p50_ms']:.1f} ms, p99 {warm['first_line_p99_ms']:.1f} ms; cold "
        f"p50 {cold['first_line_p50_ms']:.1f} ms, p99 {cold['first_line_p99_ms']:.1f} ms "
        f"(cold/warm {sandbox['first_line_ratio']:.1f}x) | whole execute() warm p50 {warm['execute_p50_ms']:.1f} ms, "
        f"p99 {warm['execute_p99_ms']:.1f} ms; cold p50 {cold['execute_p50_ms']:.1f} ms, "
        f"p99 {cold['execute_p99_ms']:.1f} ms (cold/warm {sandbox['execute_ratio']:.1f}x)",
        flush=True,
    )
