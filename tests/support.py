"""Helpers for tests that run DAWN as real processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Site:
    """A DAWN installation of its own: a database and a log folder under a temporary directory."""

    def __init__(self, tmp_path: Path, *, database_url: str | None = None, redis_url: str | None = None) -> None:
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.tmp_path = tmp_path
        self.db_path = tmp_path / "dawn.sqlite3"
        self.database_url = database_url or f"sqlite:///{self.db_path}"
        self.env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")}
        self.env.update({"DATABASE_URL": self.database_url, "DAWN_LOG_DIR": str(tmp_path / "logs"), "PYTHONUNBUFFERED": "1"})
        self.env["DAWN_OPEN_WRITES"] = "1"  # local play, as `make run`: it listens on loopback only
        if redis_url:
            self.env["REDIS_URL"] = redis_url
            # its own prefix, so that nothing else on that Redis hears this site's stream
            self.env["DAWN_CHANNEL_PREFIX"] = f"dawn-test-{uuid.uuid4().hex[:12]}"

    def manage(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
        completed = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and completed.returncode != 0:
            raise AssertionError(f"manage.py {' '.join(args)} exited {completed.returncode}:\n{completed.stderr}")
        return completed

    def spawn(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def spawn_server(self, name: str, *args: str) -> subprocess.Popen:
        """A server command line (e.g. "-m", "uvicorn", ...) in this site's environment, its output in <name>.log."""
        log = open(self.tmp_path / f"{name}.log", "w")
        try:
            return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()

    def configure(self, **changes: str) -> Site:
        """Run with config.yaml's text changed (each "old=new" by key name: stale_after="2.0=0.5")."""
        text = (ROOT / "config.yaml").read_text()
        for key, change in changes.items():
            old, new = change.split("=")
            assert f"{key}: {old}" in text, key
            text = text.replace(f"{key}: {old}", f"{key}: {new}")
        path = self.tmp_path / "config.yaml"
        path.write_text(text)
        self.env["DAWN_CONFIG"] = str(path)
        return self

    def control_journal(self) -> list[tuple]:
        """(action, outcome, tick_number) of each journalled control command, oldest first (SQLite sites)."""
        with sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=5) as conn:
            query = "SELECT action, outcome, tick_number FROM consciousness_enginecontrol ORDER BY id"
            return conn.execute(query).fetchall()

    def log(self, name: str) -> str:
        return (self.tmp_path / f"{name}.log").read_text()

    def migrate(self) -> Site:
        self.manage("migrate", "--noinput")
        return self

    def collectstatic(self) -> Site:
        """What `make run` and the scaled instructions do: hashed, compressed static files under the site."""
        self.env["DAWN_STATIC_ROOT"] = str(self.tmp_path / "static")
        self.manage("collectstatic", "--noinput", "-v", "0")
        return self

    def export(self, *args: str) -> list[dict]:
        return [json.loads(line) for line in self.manage("exportticks", *args).stdout.splitlines() if line]

    def persisted_max(self) -> int:
        """Highest persisted tick_number, read straight from the database."""
        if self.database_url.startswith("postgres"):
            import psycopg

            with psycopg.connect(self.database_url, connect_timeout=5) as conn:
                row = conn.execute("SELECT MAX(tick_number) FROM consciousness_tick").fetchone()
            return row[0] or 0
        try:
            with sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=5) as conn:
                row = conn.execute("SELECT MAX(tick_number) FROM consciousness_tick").fetchone()
        except sqlite3.OperationalError:
            return 0
        return row[0] or 0

    def terminate(self, process: subprocess.Popen) -> int:
        """SIGTERM: runtick must save and exit 0. Returns the last persisted tick."""
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=10)
        assert code == 0, process.stderr.read()
        return self.persisted_max()

    def kill_at(self, number: int, process: subprocess.Popen) -> None:
        """kill -9 once tick `number` is persisted: what was not flushed yet is lost and must be regenerated."""
        self.wait_for_tick(number, process)
        process.kill()
        process.wait(timeout=10)

    def wait_for_tick(self, number: int, process: subprocess.Popen, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            current = self.persisted_max()
            if current >= number:
                return current
            if process.poll() is not None:
                raise AssertionError(f"runtick exited early ({process.returncode}): {process.stderr.read()}")
            time.sleep(0.02)
        raise AssertionError(f"tick {number} was not persisted within {timeout} s")


def without_timestamps(ticks: list[dict]) -> list[dict]:
    return [{k: v for k, v in tick.items() if k != "timestamp"} for tick in ticks]


def http_json(method: str, url: str, body: dict | None = None, timeout: float = 10) -> tuple[int, dict]:
    """A JSON request as a script would send it; (status, body) whatever the status."""
    import urllib.error
    import urllib.request

    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def wait_http(url: str, timeout: float = 30) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers, whatever the status
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"{url} did not answer within {timeout} s")
