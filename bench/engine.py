"""Engine benchmark: the cost of one tick and of a snapshot, with no Django and no I/O."""

from __future__ import annotations

import json
import time

import numpy as np

from consciousness.engine import Engine, EngineConfig, StepInputs


def run_engine(ticks: int = 2000) -> dict:
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
    }


def print_engine(result: dict) -> None:
    print(
        f"engine  {result['ticks']} ticks: advance p50 {result['advance_p50_us']:.0f} us, p99 {result['advance_p99_us']:.0f} us "
        f"(budget at 10 Hz: 100000 us) | snapshot {result['snapshot_kib']:.0f} KiB in {result['snapshot_ms']:.1f} ms",
        flush=True,
    )
