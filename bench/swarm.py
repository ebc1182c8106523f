"""One process of the client swarm: N WebSocket clients that record when each tick arrives.

Run by bench.stream; prints one JSON summary on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import msgpack
import uvloop
import websockets


async def client(
    url: str, end_at: float, samples: list[tuple[float, str | bytes]], ready: list[int], binary: bool
) -> None:
    subprotocols = ["dawn.msgpack"] if binary else None
    async with websockets.connect(
        url, origin="http://localhost:5173", max_queue=None, compression=None, subprotocols=subprotocols
    ) as ws:
        ready.append(1)
        async for raw in ws:
            # only the arrival time is taken here; decoding waits until the end so it cannot delay the next socket
            now = time.time()
            samples.append((now, raw))
            if now >= end_at + 1.0:
                return


def ticks_in_window(
    samples: list[tuple[float, str | bytes]], start_at: float, end_at: float
) -> tuple[list[float], list[int], int]:
    """Latencies and tick numbers of the ticks stamped inside the window, and the size of one tick frame."""
    latencies, received, size = [], [], 0
    for now, raw in samples:
        message = msgpack.unpackb(raw, raw=False) if isinstance(raw, bytes) else json.loads(raw)
        if message["type"] == "tick" and start_at <= message["data"]["timestamp"] < end_at:
            latencies.append(now - message["data"]["timestamp"])
            received.append(message["data"]["tick_number"])
            size = size or len(raw.encode() if isinstance(raw, str) else raw)
    return latencies, received, size


async def main(args: argparse.Namespace) -> dict:
    samples: list[tuple[float, str]] = []
    ready: list[int] = []
    tasks = []
    for i in range(args.clients):
        tasks.append(asyncio.create_task(client(args.url, args.end_at, samples, ready, args.protocol == "msgpack")))
        if i % 50 == 49:
            await asyncio.sleep(0.05)  # connect in waves, as real clients would arrive
    results = await asyncio.gather(*tasks, return_exceptions=True)
    errors = [repr(r) for r in results if isinstance(r, BaseException)]
    latencies, received, tick_bytes = ticks_in_window(samples, args.start_at, args.end_at)
    return {
        "clients": args.clients,
        "connected": len(ready),
        "errors": errors[:5],
        "error_count": len(errors),
        "latencies": latencies,
        "tick_numbers": sorted(set(received)),
        "received": len(received),
        "tick_bytes": tick_bytes,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--start-at", type=float, required=True)
    parser.add_argument("--end-at", type=float, required=True)
    parser.add_argument("--protocol", choices=["json", "msgpack"], default="json")
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:  # the lighter the instrument, the truer the figure
        summary = runner.run(main(parser.parse_args()))
    json.dump(summary, sys.stdout)
