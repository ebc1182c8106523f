"""Helpers for tests that run DAWN as real processes."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from email.message import Message
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psutil
import yaml

ROOT = Path(__file__).resolve().parent.parent
# Debian's chromium, which `make test` installs (Playwright cannot download a browser here)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]


def launch_chromium(playwright):
    """Playwright's chromium on Debian's binary; a readable failure when it is missing."""
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


_MIGRATED: dict[str, str] = {}  # Site.migrate's templates by kind (the first site of each kind makes one)


def _migrated(kind: str, make: Callable[[], str]) -> str:
    if kind not in _MIGRATED:
        _MIGRATED[kind] = make()
    return _MIGRATED[kind]


def postgres_url(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def postgres_admin(url: str):
    """An autocommit connection to the server's maintenance database, to create and drop databases."""
    import psycopg

    return psycopg.connect(postgres_url(url, "postgres"), autocommit=True, connect_timeout=10)


def _drop_postgres(url: str, name: str) -> None:
    with postgres_admin(url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Site:
    """A DAWN installation of its own: a database and a log folder under a temporary directory."""

    def __init__(
        self,
        tmp_path: Path,
        *,
        database_url: str | None = None,
        redis_url: str | None = None,
        db_path: Path | None = None,
    ) -> None:
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.tmp_path = tmp_path
        self.db_path = db_path or tmp_path / "dawn.sqlite3"  # SQLite's file, wherever the test wants it
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

    def control_journal(self) -> list[tuple]:
        """(action, outcome, tick_number) of each journalled control command, oldest first (SQLite sites)."""
        with sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=5) as conn:
            query = "SELECT action, outcome, tick_number FROM consciousness_enginecontrol ORDER BY id"
            return conn.execute(query).fetchall()

    def log(self, name: str) -> str:
        return (self.tmp_path / f"{name}.log").read_text()

    def configure(self, **sections: dict) -> Site:
        """Run with config.yaml's values, each given section's keys replaced (DAWN_CONFIG names the copy)."""
        config = yaml.safe_load((ROOT / "config.yaml").read_text())
        for name, values in sections.items():
            config[name] = {**config.get(name, {}), **values}
        path = self.tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        self.env["DAWN_CONFIG"] = str(path)
        return self

    def migrate(self) -> Site:
        """The site's (new, empty) database as `manage.py migrate` leaves it: a copy of one database migrated
        once per test process (a migrate costs 3 s; a copy, milliseconds)."""
        if self.database_url.startswith("postgres"):
            self._copy_postgres(_migrated("postgres", self._migrated_postgres))
        else:
            with sqlite3.connect(_migrated("sqlite", self._migrated_sqlite)) as source:
                with sqlite3.connect(self.db_path) as copy:
                    source.backup(copy)  # page by page: the same file a migrate would leave
        return self

    def _migrated_sqlite(self) -> str:
        folder = Path(tempfile.mkdtemp(prefix="dawn-migrated-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        template = Site(folder, db_path=folder / "migrated.sqlite3")
        template.manage("migrate", "--noinput")
        return str(template.db_path)

    def _migrated_postgres(self) -> str:
        name = f"dawn_test_migrated_{uuid.uuid4().hex[:12]}"
        with postgres_admin(self.database_url) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        atexit.register(_drop_postgres, self.database_url, name)
        template = Site(self.tmp_path / "migrated", database_url=postgres_url(self.database_url, name))
        template.manage("migrate", "--noinput")
        return name

    def _copy_postgres(self, template: str) -> None:
        name = urlsplit(self.database_url).path.lstrip("/")
        with postgres_admin(self.database_url) as conn:  # nothing is connected to either yet
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')

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


class Descendants:
    """Every process ever seen below a root process (its launcher, the scripts, theirs), kept by identity:
    a pid the system reuses for another process is not mistaken for one of them."""

    def __init__(self) -> None:
        self.seen: dict[tuple[int, float], psutil.Process] = {}

    def watch(self, pid: int) -> None:
        """Add the descendants of `pid` and of every one already seen that still runs (an orphan's children)."""
        roots = [pid, *(p.pid for p in self.alive())]
        for root in roots:
            try:
                children = psutil.Process(root).children(recursive=True)
            except psutil.NoSuchProcess:
                continue
            for child in children:
                try:
                    self.seen.setdefault((child.pid, child.create_time()), child)
                except psutil.NoSuchProcess:
                    pass

    def alive(self) -> list[psutil.Process]:
        """Those still running (a zombie, dead but not yet reaped by its new parent, counts as gone)."""
        running = []
        for process in self.seen.values():
            try:
                if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                    running.append(process)
            except psutil.NoSuchProcess:
                pass
        return running

    def gone(self, within: float) -> list[psutil.Process]:
        """Wait until none runs, watching for late children meanwhile; returns the survivors (none: all gone)."""
        deadline = time.monotonic() + within
        while (left := self.alive()) and time.monotonic() < deadline:
            for process in left:
                self.watch(process.pid)
            time.sleep(0.05)
        return self.alive()


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


def health(base: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"{base}/health/", timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def health_until(base: str, predicate, timeout: float) -> tuple[float, dict]:
    """Poll /health/ until `predicate(status, body)`; returns the seconds it took and the body."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        status, body = health(base)
        if predicate(status, body):
            return time.monotonic() - started, body
        time.sleep(0.2)
    raise AssertionError(f"/health/ never got there within {timeout} s: {status} {body}")


def run_post(base: str) -> tuple[int, Message, dict, float]:
    """POST /api/runs/ (local play): status, headers, body and how long the answer took."""
    request = urllib.request.Request(
        f"{base}/api/runs/", data=b'{"script": "chaos_engine"}', headers={"Content-Type": "application/json"}
    )
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, headers, body = response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        status, headers, body = exc.code, exc.headers, exc.read()
    return status, headers, json.loads(body), time.monotonic() - started


class StreamWatch:
    """A /ws client on a thread of its own: every message it receives, with the moment it came; `send` talks."""

    def __init__(self, url: str, *, origin: str = "http://localhost:5173") -> None:
        self.url = url
        self.origin = origin
        self.messages: list[tuple[float, dict]] = []
        self.closed: Exception | None = None
        self._socket = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._ready.wait(10), "the stream did not open"

    def _run(self) -> None:
        from websockets.sync.client import connect

        with connect(self.url, origin=self.origin) as socket:
            self._socket = socket
            self._ready.set()
            while not self._stop.is_set():
                try:
                    message = json.loads(socket.recv(timeout=1))
                    self.messages.append((time.monotonic(), message))  # when it came, not when the wait began
                except TimeoutError:
                    continue
                except Exception as exc:  # the socket went: what for is kept
                    self.closed = exc
                    return

    @property
    def ticks(self) -> list[tuple[float, int]]:
        return [(at, m["data"]["tick_number"]) for at, m in list(self.messages) if m["type"] == "tick"]

    def between(self, start: float, end: float) -> list[int]:
        """The tick numbers received from `start` to `end` (time.monotonic())."""
        return [number for at, number in self.ticks if start <= at <= end]

    def send(self, message: dict) -> float:
        """Send a message; returns when, so that its answer can be looked for after it."""
        sent = time.monotonic()
        self._socket.send(json.dumps(message))
        return sent

    def answer(self, predicate, *, after: float, timeout: float = 10.0) -> dict:
        """The first message since `after` that satisfies `predicate`, waiting up to `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for at, message in list(self.messages):
                if at >= after and predicate(message):
                    return message
            time.sleep(0.05)
        raise AssertionError(f"no such message within {timeout} s (socket closed: {self.closed!r})")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
