"""A running script as the runner sees it: started cold, or forked warm by the launcher (see client.py)."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from processes.sandbox.pipes import Pipes, kill_group, wait_fd
from processes.sandbox.spec import ScriptSpec


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


class Child:
    """A script's main process; it leads its own session and process group."""

    pid: int
    warm: bool

    async def wait(self) -> tuple[int | None, int | None]:
        """(exit_code, signal) once the main process has exited; its group is killed by then."""
        raise NotImplementedError

    def kill(self) -> None:
        """SIGKILL the script's whole process group."""
        kill_group(self.pid)

    def abandon(self) -> None:
        """Called when supervision is interrupted before the exit was seen."""


class ColdChild(Child):
    """A script started as its own ``python -m processes.sandbox run``."""

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
                await wait_fd(pidfd)  # readable once the process is a zombie
            finally:
                os.close(pidfd)
            # Still unreaped, so the pid (and group id) cannot have been reused.
            kill_group(self.pid)
            self.proc.wait()
        else:
            await asyncio.to_thread(self.proc.wait)
            kill_group(self.pid)
        code = self.proc.returncode
        return (code, None) if code >= 0 else (None, -code)

    def abandon(self) -> None:
        try:
            self.proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            pass  # subprocess reaps it on a later Popen


def cold_start(spec: ScriptSpec, workdir: str, root: Path) -> tuple[ColdChild, Pipes]:
    """Start `spec` as a fresh interpreter in `workdir`, with its limits and the minimal environment."""
    pipes = Pipes()
    command = [
        sys.executable, "-m", "processes.sandbox", "run",
        "--cpu-s", str(spec.cpu_s), "--memory-bytes", str(spec.memory_bytes), spec.module,
    ]
    try:
        proc = subprocess.Popen(
            command,
            stdin=pipes.stdin_r,
            stdout=pipes.stdout_w,
            stderr=pipes.stderr_w,
            cwd=workdir,
            env=minimal_env(root),
            start_new_session=True,
        )
    except BaseException:
        pipes.close_all()
        raise
    pipes.close_child_ends()
    return ColdChild(proc), pipes
