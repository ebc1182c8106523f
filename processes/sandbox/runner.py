"""The Runner: starts registered scripts warm (forked by the launcher) or cold, and supervises them."""
from __future__ import annotations

import asyncio
import json
import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Awaitable, Callable, Mapping

from processes.sandbox.children import Child, cold_start
from processes.sandbox.client import Launcher, LauncherUnavailable
from processes.sandbox.pipes import Pipes
from processes.sandbox.spec import Execution, ScriptSpec, UnknownScript
from processes.sandbox.supervise import supervise

logger = logging.getLogger(__name__)

LAUNCHER_RETRY_S = 5.0


class Runner:
    """Start registered scripts, stream their progress lines, and enforce limits.

    Use one Runner per event loop: the launcher is watched by the loop that started it
    (executions from another loop start cold).
    """

    def __init__(self, registry: Mapping[str, ScriptSpec], *, cwd: str | Path, warm: bool = True):
        self.root = Path(cwd).resolve()
        self.registry = dict(registry)
        for name, spec in self.registry.items():
            if not self._module_path(spec.module):
                raise ValueError(f"script {name!r}: module {spec.module} is not a file inside {self.root}")
        self.warm = warm
        self._launcher: Launcher | None = None
        self._lock = asyncio.Lock()
        self._restart: asyncio.Task | None = None
        self._last_failure = float("-inf")
        self._running: set[Child] = set()
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
            launcher = Launcher(self.root, sorted({spec.module for spec in self.registry.values()}))
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

    async def _spawn_warm(self, spec: ScriptSpec, workdir: str) -> tuple[Child, Pipes] | None:
        launcher = self._launcher
        # The launcher's socket is watched by the loop that started it; other loops start cold.
        if launcher is None or not launcher.alive or launcher.loop is not asyncio.get_running_loop():
            return None
        pipes = Pipes()
        try:
            child = await launcher.spawn(spec, workdir, pipes.child_ends)
        except LauncherUnavailable as exc:
            pipes.close_all()
            logger.warning("warm start of %s failed (%s); starting cold", spec.name, exc)
            return None
        except BaseException:
            pipes.close_all()
            raise
        pipes.close_child_ends()
        return child, pipes

    async def _spawn(self, spec: ScriptSpec, workdir: str) -> tuple[Child, Pipes]:
        if self.warm:
            started = await self._spawn_warm(spec, workdir)
            if started is not None:
                return started
            self._restart_soon()
        return cold_start(spec, workdir, self.root)

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
            return await supervise(
                spec, child, pipes, payload,
                started_at=started_at, on_line=on_line, on_started=on_started, cancel=cancel,
            )
        finally:
            self._running.discard(child)
            pipes.close_all()
            await asyncio.to_thread(shutil.rmtree, workdir, True)
