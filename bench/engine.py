"""Engine benchmark: the cost of one tick and of a snapshot (no Django, no I/O), and the headless rate of
`runtick --no-serve --no-processes --rate max` with its history persisted on a SQLite file of its own."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

from bench.common import ROOT
from consciousness.engine import Engine, EngineConfig, StepInputs

HEADLESS_TICKS = 20_000


def run_engine(ticks: int = 5000) -> dict:
    load_before = os.getloadavg()[0]
    engine = Engine(EngineConfig.from_mapping({"seed": 7}))
    costs = np.empty(ticks)
    for i in range(ticks):
        start = time.perf_counter()
        engine.advance(StepInputs(timestamp=1.0 + i / 10))
        costs[i] = time.perf_counter() - start
    start = time.perf_counter()
    snapshot = json.dumps(engine.snapshot())
    snapshot_s = time.perf_counter() - start
    return {
        "ticks": ticks,
        "advance_p50_us": float(np.percentile(costs, 50) * 1e6),
        "advance_p99_us": float(np.percentile(costs, 99) * 1e6),
        "snapshot_kib": len(snapshot) / 1024,
        "snapshot_ms": snapshot_s * 1000,
        **run_headless(HEADLESS_TICKS),
        # the machine is shared: the figures mean little without the load they were taken under
        "load_average": (load_before, os.getloadavg()[0]),
    }


def run_headless(ticks: int) -> dict:
    """Ticks per second of a headless batch run, from the first tick to the last flush (start-up excluded)."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        env.update({"DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite3", "DAWN_LOG_DIR": tmp, "DAWN_LOG_LEVEL": "INFO"})
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
        command = ["runtick", "--no-serve", "--no-processes", "--rate", "max", "--ticks", str(ticks)]
        completed = subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
        stamps = re.findall(r"^(\S+ \S+) INFO dawn_site\.runtime: (engine epoch|stopped at)", completed.stderr, re.M)
        if len(stamps) != 2:
            raise SystemExit(f"runtick did not log its start and stop:\n{completed.stderr}")
        seconds = _log_seconds(stamps[1][0]) - _log_seconds(stamps[0][0])
        persisted = int(re.search(r"(\d+) ticks persisted", completed.stderr).group(1))
        return {"headless_ticks": persisted, "headless_s": seconds, "headless_rate": persisted / seconds, "headless_command": " ".join(command)}


def _log_seconds(stamp: str) -> float:
    clock, millis = stamp.split(" ")[1].split(",")
    h, m, s = (int(part) for part in clock.split(":"))
    return h * 3600 + m * 60 + s + int(millis) / 1000


def print_engine(result: dict) -> None:
    print(
        f"engine  {result['ticks']} ticks: advance p50 {result['advance_p50_us']:.0f} us, p99 {result['advance_p99_us']:.0f} us "
        f"(budget at 10 Hz: 100000 us) | snapshot {result['snapshot_kib']:.0f} KiB in {result['snapshot_ms']:.1f} ms",
        flush=True,
    )
    print(
        f"engine  headless `manage.py {result['headless_command']}` on SQLite: {result['headless_ticks']} ticks persisted "
        f"in {result['headless_s']:.2f} s = {result['headless_rate']:.0f} ticks/s "
        f"(load average {result['load_average'][0]:.2f} before, {result['load_average'][1]:.2f} after)",
        flush=True,
    )
