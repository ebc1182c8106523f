"""The scaled shape with Redis stopped for 30 s and restarted empty: a private redis-server of the test's own
(never the shared one), runtick --no-serve and one uvicorn worker on a PostgreSQL database of their own."""

from __future__ import annotations

import subprocess
import time

import psycopg
import pytest

from tests.support import Site, StreamWatch, free_port, health, health_until, run_post, wait_http

pytestmark = [pytest.mark.scaled, pytest.mark.slow]

RATE = 10
OUTAGE_S = 30


class PrivateRedis:
    """redis-server on a free port, nothing saved: a restart comes back empty."""

    def __init__(self, folder) -> None:
        self.port = free_port()
        self.folder = folder
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = open(self.folder / "redis.log", "a")
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.folder)],
            stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + 10
        ping = ["redis-cli", "-p", str(self.port), "ping"]
        while subprocess.run(ping, capture_output=True, text=True).stdout.strip() != "PONG":
            assert time.monotonic() < deadline, "the private redis-server did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def persisted(site: Site) -> list[int]:
    with psycopg.connect(site.database_url, connect_timeout=5) as conn:
        rows = conn.execute("SELECT tick_number FROM consciousness_tick ORDER BY tick_number")
        return [row[0] for row in rows]


def stimulus(number: int) -> dict:
    return {"type": "stimulus", "kind": "excite", "intensity": 0.5, "ref": f"s{number}"}


def test_redis_stopped_30_s_and_restarted_empty_loses_no_persisted_tick_and_the_stream_comes_back(
    tmp_path, new_database
):
    redis = PrivateRedis(tmp_path)
    redis.start()
    site = Site(tmp_path / "site", database_url=new_database(), redis_url=redis.url).migrate()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    engine = site.spawn_server(
        "runtick", "manage.py", "runtick", "--no-serve", "--no-processes", "--rate", str(RATE), "--progress", "0"
    )
    worker = site.spawn_server(
        "uvicorn", "-m", "uvicorn", "dawn_site.asgi:application", "--host", "127.0.0.1", "--port", str(port),
        "--ws", "websockets-sansio", "--ws-per-message-deflate", "false",
    )
    watch = None
    try:
        wait_http(f"{base}/health/")
        health_until(base, lambda status, body: status == 200, 30)
        site.wait_for_tick(10, engine)
        watch = StreamWatch(f"ws://127.0.0.1:{port}/ws")
        sent = watch.send(stimulus(1))
        assert watch.answer(lambda m: m["type"] == "stimulus_applied", after=sent)["data"]["ref"] == "s1"

        redis.stop()
        down_at = time.monotonic()
        before = persisted(site)[-1]
        took, body = health_until(base, lambda status, body: "channel_layer" in body["failing"], 15)
        assert body["channel_layer"]["status"] == "unreachable" and body["channel_layer"]["error"], body
        print(f"Redis down: the worker's /health/ named channel_layer after {took:.1f} s")
        # the engine still ticks and persists: the worker sees it in the database
        took, body = health_until(base, lambda status, body: body["engine"]["source"] == "database", 10)
        assert body["failing"] == ["channel_layer"], body
        assert body["engine"]["status"] == "ticking" and body["persistence"]["status"] == "ok"

        sent = watch.send(stimulus(2))
        refused = watch.answer(lambda m: m["type"] == "error" and m["data"]["ref"] == "s2", after=sent)
        assert refused["data"]["code"] == "unavailable"
        sent = watch.send({"type": "ping", "ref": "alive"})
        # the socket lives
        assert watch.answer(lambda m: m["type"] == "pong", after=sent)["data"]["ref"] == "alive"
        status, headers, answer, _waited = run_post(base)  # the write throttles' counters live in Redis
        assert status == 503 and headers["Retry-After"] and "Redis" in answer["error"], answer

        time.sleep(max(0.0, down_at + OUTAGE_S - time.monotonic()))
        during = persisted(site)[-1] - before
        assert during >= 0.8 * RATE * OUTAGE_S, during  # computed and persisted throughout
        assert health(base)[0] == 503

        redis.start()  # empty: no group, no member, nothing queued survived
        up_at = time.monotonic()
        took, _body = health_until(base, lambda status, body: status == 200, 20)
        # the same socket: the worker's hub joined the stream group again by itself
        first = watch.answer(lambda m: m["type"] == "tick", after=up_at, timeout=20)
        print(f"Redis back (empty): /health/ 200 after {took:.1f} s; tick {first['data']['tick_number']} on the "
              f"same socket after {time.monotonic() - up_at:.1f} s at most")
        # runtick's inbox is in its group again, and the first stimulus after the restart is applied (the
        # worker's pooled connection to the old Redis fails once, and the send is tried again on a fresh one)
        sent = watch.send(stimulus(3))
        answer = watch.answer(lambda m: m["data"].get("ref") == "s3", after=sent, timeout=10)
        assert answer["type"] == "stimulus_applied", answer
        assert watch.closed is None
    finally:
        if watch is not None:
            watch.close()
        worker.terminate()
        engine.terminate()
        code = engine.wait(timeout=15)
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            worker.kill()
        redis.stop()
    assert code == 0, site.log("runtick")[-3000:]
    numbers = persisted(site)
    assert numbers == list(range(1, numbers[-1] + 1))  # unique and consecutive, the outage included
    for name in ("runtick", "uvicorn"):
        assert "Traceback" not in site.log(name), site.log(name)[-5000:]
