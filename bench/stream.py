"""Stream benchmark: DAWN embedded (runtick + uvicorn), a swarm of WebSocket clients split over processes.

Run once per protocol (JSON text, msgpack binary). Prints bytes per tick, delivered %, latency p50/p99 (receive time minus the tick's timestamp), server CPU per delivered
message and memory per connection.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import psutil

from bench.common import ROOT, dawn


def run_stream(
    clients: int, procs: int, seconds: float, rate: float, worker: str | None = None, protocol: str = "json"
) -> dict:
    with dawn(rate=rate, worker=worker) as site:
        time.sleep(1.0)
        server_ps = psutil.Process(site.server.pid)
        rss_before = server_ps.memory_info().rss
        connect_time = 2.0 + clients / 400
        start_at = time.time() + connect_time
        end_at = start_at + seconds
        per_proc = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
        url = site.ws_url
        swarm = [
            subprocess.Popen(
                [
                    sys.executable, "-m", "bench.swarm", "--url", url, "--clients", str(n), "--start-at", str(start_at),
                    "--end-at", str(end_at), "--protocol", protocol,
                ],
                cwd=ROOT,
                stdout=subprocess.PIPE,
            )
            for n in per_proc
        ]
        time.sleep(max(0.0, start_at - time.time()))
        rss_connected = server_ps.memory_info().rss
        cpu_start = server_ps.cpu_times()
        time.sleep(max(0.0, end_at - time.time()))
        cpu_end = server_ps.cpu_times()
        outputs = [json.loads(p.communicate(timeout=seconds + 60)[0]) for p in swarm]
    latencies = np.array([x for o in outputs for x in o["latencies"]]) * 1000.0
    produced = sorted({t for o in outputs for t in o["tick_numbers"]})
    expected_ticks = (produced[-1] - produced[0] + 1) if produced else 0
    delivered = sum(o["received"] for o in outputs)
    connected = sum(o["connected"] for o in outputs)
    cpu = (cpu_end.user + cpu_end.system) - (cpu_start.user + cpu_start.system)
    return {
        "serving": f"{worker} worker" if worker else "embedded",
        "protocol": protocol,
        "tick_bytes": max((o["tick_bytes"] for o in outputs), default=0),
        "clients": clients,
        "connected": connected,
        "client_errors": sum(o["error_count"] for o in outputs),
        "rate_hz": rate,
        "seconds": seconds,
        "ticks_in_window": expected_ticks,
        "delivered_pct": 100.0 * delivered / max(1, expected_ticks * clients),
        "latency_p50_ms": float(np.percentile(latencies, 50)) if latencies.size else float("nan"),
        "latency_p99_ms": float(np.percentile(latencies, 99)) if latencies.size else float("nan"),
        "latency_max_ms": float(latencies.max()) if latencies.size else float("nan"),
        "server_cpu_pct": 100.0 * cpu / seconds,
        "server_cpu_us_per_msg": 1e6 * cpu / max(1, delivered),
        "memory_per_conn_kib": (rss_connected - rss_before) / max(1, connected) / 1024,
    }


def print_stream(result: dict) -> None:
    print(
        f"stream  {result['serving']:<14} {result['protocol']:<7} {result['tick_bytes']:>4} B/tick "
        f"{result['clients']:>5} clients @ {result['rate_hz']:g} Hz, {result['seconds']:g} s: "
        f"delivered {result['delivered_pct']:.2f} % of {result['ticks_in_window']} ticks | "
        f"latency p50 {result['latency_p50_ms']:.1f} ms, p99 {result['latency_p99_ms']:.1f} ms, max {result['latency_max_ms']:.1f} ms | "
        f"server CPU {result['server_cpu_pct']:.0f} % = {result['server_cpu_us_per_msg']:.1f} us/msg | "
        f"{result['memory_per_conn_kib']:.1f} KiB/conn | connected {result['connected']}, errors {result['client_errors']}",
        flush=True,
    )
