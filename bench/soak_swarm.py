"""One process of the soak's clients, until SIGTERM: steady, churning and slow WebSocket clients.

- steady: the project's client (dawn_client), connected throughout, reconnecting and resuming across a
  restart of runtick; some send a stimulus every two seconds; one keeps a digest of every tick it is given.
- churn: the same client, joining for a while and leaving, coming back resumed or fresh.
- slow: never reading, or reading one frame every half minute, with no keepalive: the server is to drop them.

Run by bench.soak; prints a JSON status line every --report seconds, and the summary when stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import random
import signal
import sys
import time
from collections import Counter

import uvloop
import websockets

from dawn_client import DawnClient

ORIGIN = "http://localhost:5173"  # config.yaml's api.cors_origins: local play may write from here
STIMULUS_EVERY_S = 2.0
KINDS = ("excite", "calm", "chaos", "focus")
PAUSE_S = 1.0  # a steady client without a tick for this long counts a pause (the restart)


def tick_digest(tick: dict) -> str:
    """The same for a tick as streamed (JSON or msgpack) and as exported from the database."""
    return hashlib.sha1(json.dumps(tick, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def ranges(numbers: set[int]) -> list[list[int]]:
    """[[first, last], ...] of consecutive runs."""
    out: list[list[int]] = []
    for n in sorted(numbers):
        if out and n == out[-1][1] + 1:
            out[-1][1] = n
        else:
            out.append([n, n])
    return out


class Tally:
    """What every client of this process saw."""

    def __init__(self) -> None:
        self.connected: Counter = Counter()
        self.connects: Counter = Counter()
        self.closes: Counter = Counter()  # (kind, code)
        self.errors: Counter = Counter()  # error frames, by code
        self.exceptions: Counter = Counter()
        self.ticks = 0
        self.gaps = 0
        self.missing = 0
        self.resumes = 0
        self.resume_failures = 0
        self.pauses: list[float] = []
        self.numbers: set[int] = set()  # every tick number a steady or churning client was given
        self.record: dict[int, str] = {}
        self.runs: dict[int, dict] = {}  # the last `process` message of each run
        self.stimuli = Counter()  # sent, acked, refused, unsent
        self.unacked: dict[str, float] = {}  # ref -> when sent
        self.steady: list[Follower] = []

    def status(self) -> dict:
        now = time.monotonic()
        live = sum(1 for f in self.steady if f.arrived is not None and now - f.arrived < 2 * PAUSE_S)
        return {
            "connected": {"steady": live, **self.connected}, "ticks": self.ticks, "gaps": self.gaps,
            "missing": self.missing,
            "errors": sum(self.errors.values()), "exceptions": sum(self.exceptions.values()),
        }

    def summary(self) -> dict:
        for follower in self.steady:
            stats = follower.client.stats
            self.connects["steady"] += stats.connects
            self.closes.update(("steady", code) for code in stats.closes)
        return {
            **self.status(),
            "connects": dict(self.connects),
            "closes": [[kind, code, count] for (kind, code), count in self.closes.items()],
            "error_codes": dict(self.errors),
            "exception_kinds": dict(self.exceptions),
            "resumes": self.resumes, "resume_failures": self.resume_failures,
            "pauses": sorted(self.pauses, reverse=True)[:20],
            "numbers": ranges(self.numbers),
            "record": self.record,
            "runs": self.runs,
            "stimuli": dict(self.stimuli),
            "unacked": sorted(self.unacked.values()),
        }


class Follower:
    """Reads one DawnClient's messages into the tally, checking that its ticks follow on."""

    def __init__(self, tally: Tally, client: DawnClient, *, record: bool = False) -> None:
        self.tally, self.client, self.record = tally, client, record
        self.previous = client.last  # a client that resumes must go on from here
        self.arrived: float | None = None

    def take(self, message: dict) -> None:
        tally, kind, data = self.tally, message["type"], message.get("data") or {}
        if kind == "tick":
            number = data["tick_number"]
            if self.previous is not None and number != self.previous + 1:
                tally.gaps += 1
                tally.missing += max(0, number - self.previous - 1)
            self.previous = number
            now = time.monotonic()
            if self.arrived is not None and now - self.arrived > PAUSE_S:
                tally.pauses.append(round(now - self.arrived, 2))
            self.arrived = now
            tally.ticks += 1
            tally.numbers.add(number)
            if self.record:
                tally.record[number] = tick_digest(data)
        elif kind == "process":
            patterns = ((data.get("output") or {}).get("metrics") or {}).get("patterns")
            tally.runs[data["id"]] = {
                "script": data["script"], "status": data["status"], "tick": data["tick_number"],
                "patterns": patterns,
            }
        elif kind == "stimulus_applied":
            if tally.unacked.pop(str(data.get("ref")), None) is not None:
                tally.stimuli["acked"] += 1
        elif kind == "error":
            tally.errors[data.get("code")] += 1
            if tally.unacked.pop(str(data.get("ref")), None) is not None:
                tally.stimuli["refused"] += 1
        elif kind == "resumed":
            tally.resumes += 1
        elif kind == "resume_failed":
            tally.resume_failures += 1


async def stimuli(tally: Tally, client: DawnClient, name: str, rng: random.Random) -> None:
    for count in range(10**9):
        await asyncio.sleep(rng.uniform(0.5, 1.5) * STIMULUS_EVERY_S)
        ref = f"{name}-{count}"
        intensity = round(rng.uniform(0.1, 0.6), 2)
        message = {"type": "stimulus", "kind": rng.choice(KINDS), "intensity": intensity, "ref": ref}
        try:
            await client.send(message)
        except Exception:  # not connected now (the restart): it was never sent
            tally.stimuli["unsent"] += 1
            continue
        tally.stimuli["sent"] += 1
        tally.unacked[ref] = time.time()


async def steady(
    tally: Tally, url: str, name: str, rng: random.Random, *, binary: bool, sends: bool, record: bool
) -> None:
    client = DawnClient(url, binary=binary, origin=ORIGIN)
    follower = Follower(tally, client, record=record)
    tally.steady.append(follower)
    sender = asyncio.create_task(stimuli(tally, client, name, rng)) if sends else None
    try:
        async for message in client.messages():
            follower.take(message)
    finally:
        if sender is not None:
            sender.cancel()


async def churn(tally: Tally, url: str, rng: random.Random, *, binary: bool) -> None:
    client: DawnClient | None = None
    await asyncio.sleep(rng.uniform(0, 30))  # arrive over the first half minute
    while True:
        if client is None or rng.random() < 0.3:  # a new visitor; else the same one, resuming
            client = DawnClient(url, binary=binary, origin=ORIGIN)
        follower = Follower(tally, client)
        leave_at = time.monotonic() + rng.uniform(5, 60)
        tally.connects["churn"] += 1
        tally.connected["churn"] += 1
        messages = client.messages()
        try:
            async for message in messages:
                follower.take(message)
                if time.monotonic() >= leave_at:
                    break
        finally:
            await messages.aclose()
            tally.connected["churn"] -= 1
        await asyncio.sleep(rng.uniform(1, 10))


async def slow(tally: Tally, url: str, rng: random.Random, *, never: bool) -> None:
    kind = "never_reads" if never else "rarely_reads"
    await asyncio.sleep(rng.uniform(0, 30))
    while True:
        code = None
        try:
            # max_queue=1: the client library stops reading the socket too, so the kernel's buffers fill up
            connecting = websockets.connect(url, origin=ORIGIN, max_queue=1, ping_interval=None, open_timeout=10)
            async with connecting as ws:
                tally.connects[kind] += 1
                tally.connected[kind] += 1
                try:
                    if never:  # until it gives up and comes back as someone else
                        await asyncio.sleep(rng.uniform(60, 180))
                        code = "left"
                    else:
                        while True:
                            await asyncio.sleep(rng.uniform(20, 40))
                            await ws.recv()
                finally:
                    tally.connected[kind] -= 1
        except websockets.ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd else 1006
        except (OSError, asyncio.TimeoutError, websockets.InvalidHandshake) as exc:
            code = type(exc).__name__
        tally.closes[(kind, code)] += 1
        await asyncio.sleep(rng.uniform(5, 15))


async def guarded(tally: Tally, coroutine) -> None:
    try:
        await coroutine
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a client that crashed: counted, and the rest go on
        tally.exceptions[type(exc).__name__] += 1
        print(f"client crashed: {exc!r}", file=sys.stderr, flush=True)


async def main(args: argparse.Namespace) -> dict:
    rng = random.Random(args.seed)
    tally = Tally()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    slow_count = round(args.clients * args.slow)
    churn_count = round(args.clients * args.churn)
    steady_count = args.clients - slow_count - churn_count
    clients = []
    for i in range(steady_count):
        name = f"s{args.seed}-{i}"
        sends = i % 8 == 0
        clients.append(steady(tally, args.url, name, random.Random(rng.random()), binary=i % 2 == 0,
                              sends=sends, record=i == 0))
    for i in range(churn_count):
        clients.append(churn(tally, args.url, random.Random(rng.random()), binary=i % 2 == 1))
    for i in range(slow_count):
        clients.append(slow(tally, args.url, random.Random(rng.random()), never=i % 2 == 0))
    tasks = []
    for i, coroutine in enumerate(clients):
        tasks.append(asyncio.create_task(guarded(tally, coroutine)))
        if i % 50 == 49:
            await asyncio.sleep(0.2)  # arrive in waves
    while not stop.is_set():
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), args.report)
        print(json.dumps({"status": tally.status()}), flush=True)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return tally.summary()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--slow", type=float, default=0.15, help="share of clients that are slow")
    parser.add_argument("--churn", type=float, default=0.35, help="share of clients that join and leave")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--report", type=float, default=60.0, help="seconds between status lines")
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        summary = runner.run(main(parser.parse_args()))
    print(json.dumps({"summary": summary}), flush=True)
