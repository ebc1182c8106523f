"""Run registered analysis scripts in isolated, resource-limited subprocesses (asyncio, no django).

Each execution gets its own session/process group, a minimal environment, a
fresh temporary working directory, RLIMIT_CPU/RLIMIT_AS/RLIMIT_CORE, a wall-clock
timeout and capped output. Children are forked from a pre-warmed launcher
(processes.launcher serve) when ``warm`` is set, otherwise (or when the launcher
is unavailable) started cold with ``python -m processes.launcher run``; both
paths call the same ``run_module_main`` so they behave the same.

Use one Runner per event loop: the launcher is watched by the loop that
started it (executions from another loop start cold).

Limitations:
- A script's child that calls setsid() (or setpgid) leaves the process group and
  so escapes the group kill. Warm: the launcher adopts it as subreaper once its
  parent dies and kills it within a quarter second. Cold: it is reparented to
  init and survives; holding the pipes it costs DRAIN_S before execute() returns.
  Plain forks never survive.
- Warm children run the code the launcher imported at start(): after editing a
  script, restart the server (or the Runner) to pick it up.
- Warm children inherit the launcher's address space (numpy, PIL, the scripts:
  about 120 MB virtual), which counts against RLIMIT_AS as it would after the
  same imports in a cold start.
- Cold children's forked orphans are reparented to init (the launcher is a
  subreaper for warm ones); they are killed but reaped by init.
- No RLIMIT_NPROC: it counts all processes of the user, not of the script.
"""
from __future__ import annotations

import asyncio
import collections
import inspect
import itertools
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Mapping

logger = logging.getLogger(__name__)

COMPLETED = "completed"
FAILED = "failed"
TIMEOUT = "timeout"
CANCELLED = "cancelled"

LINE_MAX_CHARS = 2000
TAIL_LINES = 20
READ_CHUNK = 65536
KILL_WAIT_S = 5.0  # for the exit status after SIGKILL
DRAIN_S = 1.0  # for pipe EOF after the group is dead; longer means an escaped holder
LAUNCHER_START_TIMEOUT_S = 30.0
LAUNCHER_SPAWN_TIMEOUT_S = 10.0
LAUNCHER_RETRY_S = 5.0

_MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_MEMORY_HINTS = ("MemoryError", "Cannot allocate memory", "memory allocation failed", "out of memory", "bad_alloc")


class UnknownScript(ValueError):
    """The name is not in the runner's registry."""


@dataclass(frozen=True)
class ScriptSpec:
    name: str  # registry key, e.g. "neural_analyzer"
    module: str  # e.g. "processes.scripts.neural_analyzer" (only modules inside the repo)
    timeout_s: float = 30.0  # wall clock
    cpu_s: int = 30  # RLIMIT_CPU
    memory_bytes: int = 1_073_741_824  # RLIMIT_AS
    max_output_bytes: int = 4_194_304  # cap on captured stdout and on streamed stderr

    def __post_init__(self) -> None:
        if not _MODULE_RE.match(self.module):
            raise ValueError(f"invalid module name {self.module!r}")
        if self.timeout_s <= 0 or self.cpu_s <= 0 or self.memory_bytes <= 0 or self.max_output_bytes <= 0:
            raise ValueError(f"limits of {self.name!r} must be positive")


@dataclass(frozen=True)
class Execution:
    status: str  # "completed" | "failed" | "timeout" | "cancelled"
    result: dict | None  # parsed stdout JSON when completed
    exit_code: int | None
    signal: int | None
    reason: str  # human readable, "" when completed
    started_at: float  # time.time()
    ended_at: float
    pid: int | None


def minimal_env(root: str | Path) -> dict[str, str]:
    """The whole environment of the launcher and of every script: nothing inherited from the server."""
    bindir = os.path.dirname(sys.executable)
    return {
        "PATH": f"{bindir}:/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(root),
        "PYTHONHASHSEED": "0",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


class _LauncherUnavailable(Exception):
    """Nothing was started; use the cold path."""


class _LauncherLost(Exception):
    """The launcher died while a child was running: its exit status is unknown."""


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


async def _maybe_await(value: Any) -> None:
    if inspect.isawaitable(value):
        await value


async def _wait_fd(fd: int, *, write: bool = False) -> None:
    loop = asyncio.get_running_loop()
    ready = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    (loop.add_writer if write else loop.add_reader)(fd, wake)
    try:
        await ready
    finally:
        (loop.remove_writer if write else loop.remove_reader)(fd)


async def _pump(fd: int, on_chunk: Callable[[bytes], Awaitable[None]]) -> None:
    """Read a non-blocking fd until EOF, passing each chunk on."""
    while True:
        try:
            data = os.read(fd, READ_CHUNK)
        except BlockingIOError:
            await _wait_fd(fd)
            continue
        if not data:
            return
        await on_chunk(data)


async def _feed(pipes: "_Pipes", payload: bytes) -> None:
    """Write the request to the child's stdin, then close it."""
    try:
        view = memoryview(payload)
        while view:
            try:
                view = view[os.write(pipes.stdin_w, view) :]
            except BlockingIOError:
                await _wait_fd(pipes.stdin_w, write=True)
    except BrokenPipeError:
        pass  # the child exited without reading; its exit status tells why
    finally:
        pipes.close_stdin()


class _Pipes:
    """stdin/stdout/stderr pipes: child ends are handed over, parent ends read/written here."""

    def __init__(self) -> None:
        self.stdin_r, self.stdin_w = os.pipe()
        self.stdout_r, self.stdout_w = os.pipe()
        self.stderr_r, self.stderr_w = os.pipe()
        for fd in (self.stdin_w, self.stdout_r, self.stderr_r):
            os.set_blocking(fd, False)

    @property
    def child_ends(self) -> list[int]:
        return [self.stdin_r, self.stdout_w, self.stderr_w]

    def close_child_ends(self) -> None:
        for name in ("stdin_r", "stdout_w", "stderr_w"):
            self._close(name)

    def close_stdin(self) -> None:
        self._close("stdin_w")

    def close_all(self) -> None:
        for name in ("stdin_r", "stdin_w", "stdout_r", "stdout_w", "stderr_r", "stderr_w"):
            self._close(name)

    def _close(self, name: str) -> None:
        fd = getattr(self, name)
        if fd is not None:
            setattr(self, name, None)
            try:
                os.close(fd)
            except OSError:
                pass


class _Child:
    pid: int
    warm: bool

    async def wait(self) -> tuple[int | None, int | None]:
        """(exit_code, signal) once the main process has exited; its group is killed by then."""
        raise NotImplementedError

    def kill(self) -> None:
        _kill_group(self.pid)


class _ColdChild(_Child):
    warm = False

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.pid = proc.pid

    async def wait(self) -> tuple[int | None, int | None]:
        try:
            pidfd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):
            pidfd = None
        if pidfd is not None:
            try:
                await _wait_fd(pidfd)  # readable once the process is a zombie
            finally:
                os.close(pidfd)
            # Still unreaped, so the pid (and group id) cannot have been reused.
            _kill_group(self.pid)
            self.proc.wait()
        else:
            await asyncio.to_thread(self.proc.wait)
            _kill_group(self.pid)
        code = self.proc.returncode
        return (code, None) if code >= 0 else (None, -code)

    def reap_soon(self) -> None:
        try:
            self.proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            pass  # subprocess reaps it on a later Popen


class _WarmChild(_Child):
    warm = True

    def __init__(self, pid: int, exited: asyncio.Future):
        self.pid = pid
        self.exited = exited

    async def wait(self) -> tuple[int | None, int | None]:
        # The launcher kills the group before reaping the main process.
        return await asyncio.shield(self.exited)


@dataclass
class _Pending:
    started: asyncio.Future
    exited: asyncio.Future
    pid: int | None = None


class _Launcher:
    """Client side of a ``processes.launcher serve`` fork server."""

    def __init__(self, root: Path, modules: list[str]):
        self.root = root
        self.modules = modules
        self.proc: subprocess.Popen | None = None
        self.sock: socket.socket | None = None
        self.pending: dict[int, _Pending] = {}
        self.ids = itertools.count(1)
        self.ready: asyncio.Future | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.lost = False

    @property
    def alive(self) -> bool:
        return not self.lost and self.ready is not None and self.ready.done() and not self.ready.exception()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    async def start(self) -> None:
        loop = self.loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "processes.launcher", "serve", "--fd", str(theirs.fileno()), *self.modules],
                pass_fds=(theirs.fileno(),),
                env=minimal_env(self.root),
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                start_new_session=True,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.sock = ours
        ours.setblocking(False)
        self.ready = loop.create_future()
        loop.add_reader(ours.fileno(), self._on_readable)
        try:
            await asyncio.wait_for(asyncio.shield(self.ready), LAUNCHER_START_TIMEOUT_S)
        except BaseException:
            await self.close()
            raise

    def _on_readable(self) -> None:
        assert self.sock is not None
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._on_lost()
                return
            try:
                self._dispatch(json.loads(data))
            except Exception:  # noqa: BLE001
                logger.exception("bad message from launcher: %r", data[:200])

    def _dispatch(self, message: dict) -> None:
        op = message.get("op")
        if op == "ready":
            if self.ready and not self.ready.done():
                self.ready.set_result(message.get("pid"))
            return
        pending = self.pending.get(message.get("id"))
        if pending is None:
            return
        if op == "started":
            pending.pid = message["pid"]
            if not pending.started.done():
                pending.started.set_result(message["pid"])
        elif op == "error":
            self.pending.pop(message["id"], None)
            if not pending.started.done():
                pending.started.set_exception(_LauncherUnavailable(message.get("error", "spawn failed")))
        elif op == "exited":
            self.pending.pop(message["id"], None)
            if not pending.exited.done():
                pending.exited.set_result((message.get("exit_code"), message.get("signal")))

    def _on_lost(self) -> None:
        if self.lost:
            return
        self.lost = True
        logger.warning("process launcher (pid %s) went away", self.pid)
        if self.sock is not None:
            asyncio.get_running_loop().remove_reader(self.sock.fileno())
            self.sock.close()
        if self.ready and not self.ready.done():
            self.ready.set_exception(_LauncherUnavailable("launcher exited during start"))
        for pending in self.pending.values():
            if pending.pid is not None:
                _kill_group(pending.pid)  # normally dead already: children have PDEATHSIG
            if not pending.started.done():
                pending.started.set_exception(_LauncherUnavailable("launcher exited"))
            if not pending.exited.done():
                pending.exited.set_exception(_LauncherLost("launcher exited unexpectedly; exit status unknown"))
        self.pending.clear()
        if self.proc is not None and self.proc.poll() is None:
            proc = self.proc
            asyncio.get_running_loop().run_in_executor(None, proc.wait)

    async def spawn(self, spec: ScriptSpec, workdir: str, fds: list[int]) -> _WarmChild:
        """Fork a child of the launcher; raises _LauncherUnavailable when nothing was started."""
        if not self.alive or self.sock is None:
            raise _LauncherUnavailable("launcher not running")
        loop = asyncio.get_running_loop()
        request_id = next(self.ids)
        pending = _Pending(loop.create_future(), loop.create_future())
        pending.exited.add_done_callback(lambda f: f.cancelled() or f.exception())  # no "never retrieved" noise
        self.pending[request_id] = pending
        message = {
            "op": "spawn",
            "id": request_id,
            "module": spec.module,
            "cpu_s": spec.cpu_s,
            "memory_bytes": spec.memory_bytes,
            "cwd": workdir,
        }
        try:
            data = json.dumps(message).encode()
            while True:
                try:
                    socket.send_fds(self.sock, [data], fds)
                    break
                except BlockingIOError:
                    await _wait_fd(self.sock.fileno(), write=True)
            pid = await asyncio.wait_for(asyncio.shield(pending.started), LAUNCHER_SPAWN_TIMEOUT_S)
        except asyncio.TimeoutError:
            # A wedged launcher: kill it (its children die with it) and go cold.
            self.pending.pop(request_id, None)
            self.kill()
            raise _LauncherUnavailable("launcher did not answer") from None
        except OSError as exc:
            self.pending.pop(request_id, None)
            self._on_lost()
            raise _LauncherUnavailable(str(exc)) from exc
        return _WarmChild(pid, pending.exited)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        self._on_lost()

    async def close(self) -> None:
        if self.sock is not None and not self.lost:
            # EOF makes the launcher kill its children and exit.
            self.lost = True
            asyncio.get_running_loop().remove_reader(self.sock.fileno())
            self.sock.close()
            for pending in self.pending.values():
                if pending.pid is not None:
                    _kill_group(pending.pid)
                if not pending.started.done():
                    pending.started.set_exception(_LauncherUnavailable("runner closed"))
                if not pending.exited.done():
                    pending.exited.set_exception(_LauncherLost("runner closed"))
            self.pending.clear()
        if self.proc is not None:
            try:
                await asyncio.wait_for(asyncio.to_thread(self.proc.wait), 2.0)
            except asyncio.TimeoutError:
                self.proc.kill()
                await asyncio.to_thread(self.proc.wait)


class _StderrLines:
    """Split stderr into lines for on_line: truncated lines, a capped total, the last lines kept."""

    def __init__(self, on_line: Callable[[str], Any] | None, max_total: int):
        self.on_line = on_line
        self.max_total = max_total
        self.total = 0
        self.partial = bytearray()
        self.skipping = False  # inside an over-long line
        self.capped = False
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)

    async def feed(self, data: bytes) -> None:
        start = 0
        while start < len(data):
            end = data.find(b"\n", start)
            piece = data[start:] if end < 0 else data[start:end]
            if not self.skipping:
                room = LINE_MAX_CHARS * 4 - len(self.partial)
                self.partial += piece[:room]
                self.skipping = len(piece) > room
            if end < 0:
                return
            await self._line()
            start = end + 1

    async def finish(self) -> None:
        if self.partial or self.skipping:
            await self._line()

    async def _line(self) -> None:
        text = bytes(self.partial).decode("utf-8", errors="replace").rstrip("\r")[:LINE_MAX_CHARS]
        self.partial.clear()
        self.skipping = False
        self.tail.append(text)
        if self.on_line is None or self.capped:
            return
        self.total += len(text) + 1
        if self.total > self.max_total:
            self.capped = True
            text = f"[further output dropped: stderr exceeded {self.max_total} bytes]"
        try:
            await _maybe_await(self.on_line(text))
        except Exception:  # noqa: BLE001 - a broken listener must not break the run
            logger.exception("on_line callback failed; further lines are not delivered")
            self.on_line = None


def _memory_hint(tail: collections.deque[str]) -> str | None:
    for line in reversed(tail):
        for hint in _MEMORY_HINTS:
            if hint in line:
                return hint
    return None


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _failure_reason(exit_code: int | None, signum: int | None, tail: collections.deque[str]) -> str:
    memory = _memory_hint(tail)
    if signum is not None:
        if signum == signal.SIGXCPU:
            return "CPU time limit exceeded (SIGXCPU)"
        if memory:
            return f"memory limit exceeded (killed by {_signal_name(signum)})"
        return f"killed by {_signal_name(signum)}"
    if memory:
        return f"memory limit exceeded ({memory})"
    last = next((line for line in reversed(tail) if line.strip()), "")
    return f"exit code {exit_code}: {last}" if last else f"exit code {exit_code}"


class Runner:
    """Start registered scripts, stream their progress lines, and enforce limits."""

    def __init__(self, registry: Mapping[str, ScriptSpec], *, cwd: str | Path, warm: bool = True):
        self.root = Path(cwd).resolve()
        self.registry = dict(registry)
        for name, spec in self.registry.items():
            if not self._module_path(spec.module):
                raise ValueError(f"script {name!r}: module {spec.module} is not a file inside {self.root}")
        self.warm = warm
        self._launcher: _Launcher | None = None
        self._lock = asyncio.Lock()
        self._restart: asyncio.Task | None = None
        self._last_failure = float("-inf")
        self._running: set[_Child] = set()
        self._closed = False

    def _module_path(self, module: str) -> Path | None:
        base = self.root.joinpath(*module.split("."))
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file() and candidate.resolve().is_relative_to(self.root):
                return candidate
        return None

    @property
    def launcher_pid(self) -> int | None:
        """Pid of the warm launcher when it is up, else None."""
        launcher = self._launcher
        return launcher.pid if launcher is not None and launcher.alive else None

    async def start(self) -> None:
        """Start the warm launcher (no-op when cold or already running); failures fall back to cold starts."""
        if not self.warm or self._closed:
            return
        async with self._lock:
            if self._launcher is not None and self._launcher.alive:
                return
            modules = sorted({spec.module for spec in self.registry.values()})
            launcher = _Launcher(self.root, modules)
            try:
                await launcher.start()
            except Exception:  # noqa: BLE001
                self._last_failure = time.monotonic()
                logger.exception("process launcher failed to start; scripts start cold")
                return
            if self._closed:
                await launcher.close()
                return
            self._launcher = launcher

    async def close(self) -> None:
        """Stop the launcher and kill every script still running."""
        self._closed = True
        if self._restart is not None:
            self._restart.cancel()
        for child in list(self._running):
            child.kill()
        async with self._lock:
            if self._launcher is not None:
                await self._launcher.close()
                self._launcher = None

    def _restart_soon(self) -> None:
        if self._closed or (self._restart is not None and not self._restart.done()):
            return
        if time.monotonic() - self._last_failure < LAUNCHER_RETRY_S:
            return
        self._restart = asyncio.get_running_loop().create_task(self.start())

    async def _spawn(self, spec: ScriptSpec, workdir: str) -> tuple[_Child, _Pipes]:
        if self.warm:
            launcher = self._launcher
            # The launcher's socket is watched by the loop that started it; other loops start cold.
            if launcher is not None and launcher.alive and launcher.loop is asyncio.get_running_loop():
                pipes = _Pipes()
                try:
                    child = await launcher.spawn(spec, workdir, pipes.child_ends)
                    pipes.close_child_ends()
                    return child, pipes
                except _LauncherUnavailable as exc:
                    pipes.close_all()
                    logger.warning("warm start of %s failed (%s); starting cold", spec.name, exc)
                except BaseException:
                    pipes.close_all()
                    raise
            self._restart_soon()
        pipes = _Pipes()
        try:
            proc = subprocess.Popen(
                [
                    sys.executable, "-m", "processes.launcher", "run",
                    "--cpu-s", str(spec.cpu_s), "--memory-bytes", str(spec.memory_bytes),
                    spec.module,
                ],
                stdin=pipes.stdin_r,
                stdout=pipes.stdout_w,
                stderr=pipes.stderr_w,
                cwd=workdir,
                env=minimal_env(self.root),
                start_new_session=True,
            )
        except BaseException:
            pipes.close_all()
            raise
        pipes.close_child_ends()
        return _ColdChild(proc), pipes

    async def execute(
        self,
        name: str,
        request: dict,
        *,
        on_line: Callable[[str], Awaitable[None] | None] | None = None,
        on_started: Callable[[int], Any] | None = None,
        cancel: asyncio.Event | None = None,
    ) -> Execution:
        """Run the registered script ``name`` on ``request`` and report how it ended."""
        spec = self.registry.get(name)
        if spec is None:
            raise UnknownScript(f"unknown script {name!r}")
        if not isinstance(request, dict):
            raise TypeError(f"request must be a dict, got {type(request).__name__}")
        if self._closed:
            raise RuntimeError("runner is closed")
        payload = (json.dumps(request, allow_nan=False) + "\n").encode()

        started_at = time.time()
        workdir = tempfile.mkdtemp(prefix=f"dawn-{name}-")
        try:
            child, pipes = await self._spawn(spec, workdir)
        except BaseException:
            shutil.rmtree(workdir, ignore_errors=True)
            raise
        self._running.add(child)
        try:
            return await self._supervise(spec, child, pipes, payload, started_at, on_line, on_started, cancel)
        finally:
            self._running.discard(child)
            pipes.close_all()
            await asyncio.to_thread(shutil.rmtree, workdir, True)

    async def _supervise(
        self,
        spec: ScriptSpec,
        child: _Child,
        pipes: _Pipes,
        payload: bytes,
        started_at: float,
        on_line: Callable[[str], Any] | None,
        on_started: Callable[[int], Any] | None,
        cancel: asyncio.Event | None,
    ) -> Execution:
        loop = asyncio.get_running_loop()
        stdout = bytearray()
        overflow = asyncio.Event()
        lines = _StderrLines(on_line, spec.max_output_bytes)

        async def take_stdout(data: bytes) -> None:
            if len(stdout) + len(data) > spec.max_output_bytes:
                overflow.set()
                return
            stdout.extend(data)

        async def read_stderr() -> None:
            await _pump(pipes.stderr_r, lines.feed)
            await lines.finish()

        tasks = [
            loop.create_task(_feed(pipes, payload)),
            loop.create_task(_pump(pipes.stdout_r, take_stdout)),
            loop.create_task(read_stderr()),
        ]
        exited = loop.create_task(child.wait())
        watchers = {exited, loop.create_task(overflow.wait())}
        if cancel is not None:
            watchers.add(loop.create_task(cancel.wait()))
        cause = None
        exit_code = signum = None
        deadline = loop.time() + spec.timeout_s
        try:
            if on_started is not None:
                await _maybe_await(on_started(child.pid))
            remaining = max(0.0, deadline - loop.time())
            await asyncio.wait(watchers, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            if not exited.done():
                cause = CANCELLED if cancel is not None and cancel.is_set() else FAILED if overflow.is_set() else TIMEOUT
                child.kill()
                await asyncio.wait({exited}, timeout=KILL_WAIT_S)
            if exited.done() and not exited.cancelled() and exited.exception() is None:
                exit_code, signum = exited.result()
            else:
                child.kill()  # launcher lost: its group may still hold the pipes
            # Read to EOF, which also means the group is dead; an escaped (setsid) grandchild may hold them open.
            await asyncio.wait(tasks[1:], timeout=DRAIN_S)
        except BaseException:
            child.kill()
            if isinstance(child, _ColdChild) and not exited.done():
                child.reap_soon()
            raise
        finally:
            for task in [*tasks, *watchers]:
                task.cancel()
            await asyncio.gather(*tasks, *watchers, return_exceptions=True)
        ended_at = time.time()

        def ended(status: str, reason: str, result: dict | None = None) -> Execution:
            return Execution(status, result, exit_code, signum, reason, started_at, ended_at, child.pid)

        if cause == CANCELLED:
            return ended(CANCELLED, "cancelled")
        if cause == TIMEOUT:
            return ended(TIMEOUT, f"timed out after {spec.timeout_s} s")
        if overflow.is_set():
            return ended(FAILED, f"output exceeded {spec.max_output_bytes} bytes")
        if not exited.done() or exited.cancelled():
            return ended(FAILED, "no exit status after SIGKILL")
        if exited.exception() is not None:
            return ended(FAILED, str(exited.exception()) or "exit status unknown")
        if exit_code != 0:
            return ended(FAILED, _failure_reason(exit_code, signum, lines.tail))
        try:
            result = json.loads(stdout.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return ended(FAILED, "output is not JSON")
        if not isinstance(result, dict):
            return ended(FAILED, f"output is not a JSON object (got {type(result).__name__})")
        return ended(COMPLETED, "", result)
