"""The stream and its Python client against a real runtick: msgpack, resume after 3 s away, restarts, the CLI."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import msgpack
import pytest
import websockets

from dawn_client import DawnClient
from tests.support import ROOT, Site, free_port, wait_http


ORIGIN = "http://localhost:5173"


class Runtick:
    """runtick serving on a fixed port, restartable on the same one."""

    def __init__(self, site: Site, rate: int = 20) -> None:
        self.site, self.rate, self.port = site, rate, free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def start(self) -> None:
        self.process = self.site.spawn("runtick", "--no-processes", "--rate", str(self.rate), "--port", str(self.port))
        wait_http(f"http://127.0.0.1:{self.port}/health/")

    def terminate(self) -> None:
        self.site.terminate(self.process)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)


@pytest.fixture
def runtick(tmp_path):
    server = Runtick(Site(tmp_path).migrate())
    server.start()
    yield server
    if server.process.poll() is None:
        server.terminate()


async def next_ticks(ws, count: int) -> list[dict]:
    found = []
    while len(found) < count:
        raw = await asyncio.wait_for(ws.recv(), 10)
        message = msgpack.unpackb(raw, raw=False) if isinstance(raw, bytes) else json.loads(raw)
        if message["type"] == "tick":
            found.append(message["data"])
    return found


async def test_msgpack_frames_decode_to_the_same_ticks_as_the_json_stream(runtick):
    async with websockets.connect(runtick.url, origin=ORIGIN, subprotocols=["dawn.msgpack"]) as binary, \
            websockets.connect(runtick.url, origin=ORIGIN) as text:
        assert binary.subprotocol == "dawn.msgpack" and text.subprotocol is None
        hello = msgpack.unpackb(await binary.recv(), raw=False)
        assert hello["type"] == "connection" and hello["data"]["protocol"] == "msgpack"
        assert isinstance(await text.recv(), str)
        from_binary = {t["tick_number"]: t for t in await next_ticks(binary, 10)}
        from_text = {t["tick_number"]: t for t in await next_ticks(text, 10)}
    common = from_binary.keys() & from_text.keys()
    assert len(common) >= 5
    assert all(from_binary[n] == from_text[n] for n in common)


async def test_a_client_away_for_3_seconds_resumes_every_tick_once(runtick):
    async with websockets.connect(runtick.url, origin=ORIGIN) as ws:
        hello = json.loads(await ws.recv())["data"]
        before = await next_ticks(ws, 5)
    await asyncio.sleep(3)
    last = before[-1]["tick_number"]
    async with websockets.connect(f"{runtick.url}?epoch={hello['epoch']}&since={last}", origin=ORIGIN) as ws:
        assert json.loads(await ws.recv())["type"] == "connection"
        resumed = json.loads(await ws.recv())
        assert resumed["type"] == "resumed" and resumed["data"]["count"] >= 40  # 3 s at 20 Hz
        after = await next_ticks(ws, resumed["data"]["count"] + 10)
    numbers = [t["tick_number"] for t in before + after]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))


async def test_a_client_riding_through_runtick_restarts_sees_every_tick_once(runtick):
    client = DawnClient(runtick.url, origin=ORIGIN, backoff_base=0.1, backoff_cap=0.5)
    seen: list[int] = []

    async def follow():
        async for tick in client.ticks():
            seen.append(tick["tick_number"])

    async def until_seen(count: int) -> None:
        target = len(seen) + count
        for _ in range(600):
            if len(seen) >= target:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"the client stopped at {seen[-1:]} ({client.stats})")

    task = asyncio.create_task(follow())
    try:
        await until_seen(20)
        await asyncio.to_thread(runtick.terminate)  # SIGTERM: saves, closes the sockets with 1012
        await asyncio.sleep(1.0)
        await asyncio.to_thread(runtick.start)
        await until_seen(20)
        await asyncio.to_thread(runtick.kill)  # kill -9: up to a flush interval of ticks is regenerated
        await asyncio.sleep(1.0)
        await asyncio.to_thread(runtick.start)
        await until_seen(40)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert seen == list(range(seen[0], seen[0] + len(seen)))
    assert client.stats.reconnects >= 2 and client.stats.resume_failures == 0


def test_tail_and_record_work_against_a_running_dawn(runtick, tmp_path):
    out = tmp_path / "ticks.jsonl"
    command = [sys.executable, "-m", "dawn_client"]
    record = subprocess.run(
        [*command, "record", runtick.url, "--out", str(out), "--count", "15"], cwd=ROOT, capture_output=True, text=True,
        timeout=60,
    )
    assert record.returncode == 0, record.stderr
    assert "15 ticks to" in record.stderr
    # nothing but the progress line: the stream's generators are closed before the loop ends, not by its
    # shutdown (which printed "aclose(): asynchronous generator is already running")
    noise = [line for line in record.stderr.replace("\r", "\n").splitlines() if line.strip() and "ticks to" not in line]
    assert noise == []
    numbers = [json.loads(line)["tick_number"] for line in out.read_text().splitlines()]
    assert numbers == list(range(numbers[0], numbers[0] + 15))
    tail = subprocess.run([*command, "tail", runtick.url, "--count", "3", "--json"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert tail.returncode == 0, tail.stderr
    assert tail.stdout.count("scup") == 3
    assert tail.stderr == ""
