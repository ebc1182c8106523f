"""The runner's side of the fork server (server.py): start it, ask it to fork scripts, hear how they end."""
from __future__ import annotations

import asyncio
import itertools
import json
import logging
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from processes.sandbox.children import Child, minimal_env
from processes.sandbox.pipes import kill_group, wait_fd
from processes.sandbox.spec import ScriptSpec

logger = logging.getLogger(__name__)

START_TIMEOUT_S = 30.0
SPAWN_TIMEOUT_S = 10.0


class LauncherUnavailable(Exception):
    """Nothing was started; use the cold path."""


class LauncherLost(Exception):
    """The launcher died while a child was running: its exit status is unknown."""


class WarmChild(Child):
    """A script forked by the launcher; the launcher reports its exit."""

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


class Launcher:
    """Client of a ``python -m processes.sandbox serve`` fork server, watched by the loop that started it."""

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
        """Started, ready, and not lost since."""
        return not self.lost and self.ready is not None and self.ready.done() and not self.ready.exception()

    @property
    def pid(self) -> int | None:
        """The launcher's pid once started."""
        return self.proc.pid if self.proc else None

    async def start(self) -> None:
        """Start the fork server and wait until it has imported the modules."""
        loop = self.loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        command = [sys.executable, "-m", "processes.sandbox", "serve", "--fd", str(theirs.fileno()), *self.modules]
        try:
            self.proc = subprocess.Popen(
                command,
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
            await asyncio.wait_for(asyncio.shield(self.ready), START_TIMEOUT_S)
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
                pending.started.set_exception(LauncherUnavailable(message.get("error", "spawn failed")))
        elif op == "exited":
            self.pending.pop(message["id"], None)
            if not pending.exited.done():
                pending.exited.set_result((message.get("exit_code"), message.get("signal")))

    def _stop_watching(self) -> None:
        self.lost = True
        if self.sock is not None:
            asyncio.get_running_loop().remove_reader(self.sock.fileno())
            self.sock.close()

    def _fail_pending(self, why: str, lost: str) -> None:
        for pending in self.pending.values():
            if pending.pid is not None:
                kill_group(pending.pid)  # normally dead already: children have PDEATHSIG
            if not pending.started.done():
                pending.started.set_exception(LauncherUnavailable(why))
            if not pending.exited.done():
                pending.exited.set_exception(LauncherLost(lost))
        self.pending.clear()

    def _on_lost(self) -> None:
        if self.lost:
            return
        logger.warning("process launcher (pid %s) went away", self.pid)
        self._stop_watching()
        if self.ready and not self.ready.done():
            self.ready.set_exception(LauncherUnavailable("launcher exited during start"))
        self._fail_pending("launcher exited", "launcher exited unexpectedly; exit status unknown")
        if self.proc is not None and self.proc.poll() is None:
            asyncio.get_running_loop().run_in_executor(None, self.proc.wait)

    async def spawn(self, spec: ScriptSpec, workdir: str, fds: list[int]) -> WarmChild:
        """Fork a child of the launcher; raises LauncherUnavailable when nothing was started."""
        if not self.alive or self.sock is None:
            raise LauncherUnavailable("launcher not running")
        loop = asyncio.get_running_loop()
        request_id = next(self.ids)
        pending = _Pending(loop.create_future(), loop.create_future())
        # retrieve the exception even when nobody awaits it: no "never retrieved" noise
        pending.exited.add_done_callback(lambda f: f.cancelled() or f.exception())
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
                    await wait_fd(self.sock.fileno(), write=True)
            pid = await asyncio.wait_for(asyncio.shield(pending.started), SPAWN_TIMEOUT_S)
        except asyncio.TimeoutError:
            # A wedged launcher: kill it (its children die with it) and go cold.
            self.pending.pop(request_id, None)
            self.kill()
            raise LauncherUnavailable("launcher did not answer") from None
        except OSError as exc:
            self.pending.pop(request_id, None)
            self._on_lost()
            raise LauncherUnavailable(str(exc)) from exc
        return WarmChild(pid, pending.exited)

    def kill(self) -> None:
        """Kill the launcher now (its children die with it: PDEATHSIG)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        self._on_lost()

    async def close(self) -> None:
        """Close the socket, which makes the launcher kill its children and exit; wait for it."""
        if self.sock is not None and not self.lost:
            self._stop_watching()
            self._fail_pending("runner closed", "runner closed")
        if self.proc is not None:
            try:
                await asyncio.wait_for(asyncio.to_thread(self.proc.wait), 2.0)
            except asyncio.TimeoutError:
                self.proc.kill()
                await asyncio.to_thread(self.proc.wait)
