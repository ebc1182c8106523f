"""One process of the client swarm: N WebSocket clients that record when each tick arrives.

Run by bench.stream; prints one JSON summary on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import websockets


async def client(url: str, start_at: float, end_at: float, latencies: list[float], received: list[int], ready: list[int]) -> None:
    async with websockets.connect(url, origin="http://localhost:5173", max_queue=None, compression=None) as ws:
        ready.append(1)
        async for raw in ws:
            now = time.time()
            message = json.loads(raw)
            if message["type"] != "tick":
                continue
            data = message["data"]
            if start_at <= data["timestamp"] < end_at:
                latencies.append(now - data["timestamp"])
                received.append(data["tick_number"])
            if now >= end_at + 1.0:
                return


async def main(args: argparse.Namespace) -> dict:
    latencies: list[float] = []
    received: list[int] = []
    ready: list[int] = []
    tasks = []
    for i in range(args.clients):
        tasks.append(asyncio.create_task(client(args.url, args.start_at, args.end_at, latencies, received, ready)))
        if i % 50 == 49:
            await asyncio.sleep(0.05)  # connect in waves, as real clients would arrive
    results = await asyncio.gather(*tasks, return_exceptions=True)
    errors = [repr(r) for r in results if isinstance(r, BaseException)]
    return {
        "clients": args.clients,
        "connected": len(ready),
        "errors": errors[:5],
        "error_count": len(errors),
        "latencies": latencies,
        "tick_numbers": sorted(set(received)),
        "received": len(received),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--start-at", type=float, required=True)
    parser.add_argument("--end-at", type=float, required=True)
    summary = asyncio.run(main(parser.parse_args()))
    json.dump(summary, sys.stdout)
