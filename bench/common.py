"""What the benchmarks share: DAWN started embedded on a database of its own."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import yaml

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer within {timeout} s")


WORKERS = {
    # as deployed: uvicorn as runtick embeds it (DAWN's websockets-sansio protocol with bounded send buffers,
    # no per-message deflate), Daphne as it comes
    "uvicorn": ["-m", "uvicorn", "dawn_site.asgi:application", "--ws", "dawn_site.server:DawnWebSocketProtocol",
                "--ws-per-message-deflate", "false",
                "--no-access-log", "--host", "127.0.0.1", "--port"],
    "daphne": ["-m", "daphne", "dawn_site.asgi:application", "-b", "127.0.0.1", "-p"],
}


def site_env(tmp: str, **extra: str) -> dict[str, str]:
    """The environment of a DAWN whose SQLite database and logs live in `tmp` (embedded), migrated.

    config.yaml as it is, except that one address may hold any number of sockets: every benchmark client
    comes from 127.0.0.1, where real ones would come from as many addresses.
    """
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["stream"]["max_connections_per_address"] = 1_000_000
    (Path(tmp) / "config.yaml").write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update({"DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite3", "DAWN_LOG_DIR": tmp, **extra})
    env["DAWN_CONFIG"] = str(Path(tmp) / "config.yaml")
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    return env


class Dawn(NamedTuple):
    base: str  # http://127.0.0.1:<port>
    server: subprocess.Popen  # the process that serves the clients (runtick embedded, or the worker)

    @property
    def ws_url(self) -> str:
        return self.base.replace("http", "ws", 1) + "/ws"


@contextlib.contextmanager
def dawn(*, rate: float = 10.0, worker: str | None = None) -> Iterator[Dawn]:
    """DAWN on a free port with a SQLite file of its own and no tick rules.

    Embedded (runtick serves) by default; with `worker` ("uvicorn" or "daphne"), the scaled shape:
    runtick --no-serve and that server as the one worker, over the Redis that REDIS_URL names.
    """
    if worker is not None and not os.environ.get("REDIS_URL"):
        raise SystemExit("the worker benchmarks need REDIS_URL (the scaled shape's channel layer)")
    with tempfile.TemporaryDirectory() as tmp:
        env = site_env(tmp, DAWN_LOG_LEVEL="WARNING")
        if worker is not None:
            env.update({"REDIS_URL": os.environ["REDIS_URL"], "DAWN_CHANNEL_PREFIX": f"dawn-bench-{os.getpid()}"})
        port = free_port()
        tick = [sys.executable, "manage.py", "runtick", "--no-processes", "--rate", str(rate)]
        commands = [[*tick, "--port", str(port)]] if worker is None else [[*tick, "--no-serve"], [sys.executable, *WORKERS[worker], str(port)]]
        started: list[subprocess.Popen] = []
        try:
            for command in commands:
                started.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL))
            base = f"http://127.0.0.1:{port}"
            wait_http(f"{base}/health/")
            yield Dawn(base, started[-1])
        finally:
            for server in reversed(started):
                server.send_signal(signal.SIGTERM)
                try:
                    server.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    server.kill()
