"""Probe a running DAWN: `python -m bench.probe [ws://127.0.0.1:8000/ws] [--ticks 50]`.

Connects as a browser would (with an Origin header), takes N consecutive ticks, checks every field of the
Tick Data Format is present and in range, and prints the tick rate and the inter-arrival jitter.
Exits 1 if a tick is missing, malformed or out of range.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import numpy as np
from websockets.sync.client import connect

UNIT = (0.0, 1.0)
RANGES = {
    "scup": (0.0, 100.0),
    "entropy": UNIT,
    "neural_activity": UNIT,
    "consciousness_unity": UNIT,
    "memory_pressure": UNIT,
    ("neural", "firing_rate"): (0.0, math.inf),
    ("neural", "connectivity"): UNIT,
    ("consciousness", "multi-state"): UNIT,
    ("consciousness", "entanglement"): UNIT,
    ("chaos", "lyapunov"): (-math.inf, math.inf),
    ("chaos", "fractal_dim"): (1.0, 2.0),
}
FIELDS = {"tick_number", "timestamp", "scup", "entropy", "mood", "neural_activity", "consciousness_unity", "memory_pressure", "active_processes", "subsystems"}


def problems(tick: dict) -> list[str]:
    found = [f"missing {name}" for name in sorted(FIELDS - set(tick))]
    found += [f"unexpected {name}" for name in sorted(set(tick) - FIELDS)]
    for key, (low, high) in RANGES.items():
        value = tick["subsystems"][key[0]][key[1]] if isinstance(key, tuple) else tick.get(key)
        if not isinstance(value, (int, float)) or not math.isfinite(value) or not low <= value <= high:
            found.append(f"{'.'.join(key) if isinstance(key, tuple) else key} = {value!r}")
    if not isinstance(tick.get("mood"), str) or not isinstance(tick.get("active_processes"), list):
        found.append("mood or active_processes malformed")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url", nargs="?", default="ws://127.0.0.1:8000/ws")
    parser.add_argument("--ticks", type=int, default=50)
    parser.add_argument("--origin", default="http://localhost:5173")
    args = parser.parse_args()
    arrivals, ticks = [], []
    with connect(args.url, origin=args.origin) as ws:
        while len(ticks) < args.ticks:
            message = json.loads(ws.recv(timeout=10))
            if message["type"] == "tick":
                arrivals.append(time.monotonic())
                ticks.append(message["data"])
    numbers = [t["tick_number"] for t in ticks]
    bad = {t["tick_number"]: p for t in ticks if (p := problems(t))}
    gaps = np.diff(arrivals) * 1000
    period = float(np.mean(gaps))
    jitter = np.abs(gaps - period)
    consecutive = numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    print(f"{len(ticks)} ticks {numbers[0]}..{numbers[-1]}, consecutive: {'yes' if consecutive else 'NO'}")
    print(f"rate {1000 / period:.3f} Hz (mean interval {period:.2f} ms); jitter p50 {np.percentile(jitter, 50):.2f} ms, "
          f"p99 {np.percentile(jitter, 99):.2f} ms, max {jitter.max():.2f} ms")
    print("fields: all present and in range" if not bad else f"fields: problems in {len(bad)} ticks, e.g. {next(iter(bad.items()))}")
    return 0 if consecutive and not bad else 1


if __name__ == "__main__":
    sys.exit(main())
