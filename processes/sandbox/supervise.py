"""Supervision of one running script: feed its request, read its output, enforce limits, say how it ended."""
from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

from processes.sandbox.children import Child
from processes.sandbox.lines import StderrLines
from processes.sandbox.pipes import Pipes, maybe_await, pump
from processes.sandbox.reasons import Outcome, exit_reason, result_of
from processes.sandbox.spec import Execution, ScriptSpec

KILL_WAIT_S = 5.0  # for the exit status after SIGKILL
DRAIN_S = 1.0  # for pipe EOF after the group is dead; longer means an escaped holder


class _Stdout:
    """The captured stdout; past `limit` bytes the rest is dropped and `overflow` is set."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self.overflow = asyncio.Event()

    async def take(self, chunk: bytes) -> None:
        if len(self.data) + len(chunk) > self.limit:
            self.overflow.set()
            return
        self.data.extend(chunk)


async def _cancel(tasks: list[asyncio.Task]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _exit_known(exited: asyncio.Task) -> bool:
    return exited.done() and not exited.cancelled() and exited.exception() is None


async def _stderr(pipes: Pipes, lines: StderrLines) -> None:
    await pump(pipes.stderr_r, lines.feed)
    await lines.finish()


async def _watch(
    child: Child, exited: asyncio.Task, overflow: asyncio.Event, cancel: asyncio.Event | None, deadline: float
) -> Outcome | None:
    """Wait for the exit; on a cancel, an output overflow or the deadline, kill the group and say which."""
    loop = asyncio.get_running_loop()
    stops = [loop.create_task(overflow.wait())]
    if cancel is not None:
        stops.append(loop.create_task(cancel.wait()))
    remaining = max(0.0, deadline - loop.time())
    try:
        await asyncio.wait({exited, *stops}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
    finally:
        await _cancel(stops)
    if exited.done():
        return None
    cause = Outcome.CANCELLED if cancel is not None and cancel.is_set() else (
        Outcome.FAILED if overflow.is_set() else Outcome.TIMEOUT
    )
    child.kill()
    await asyncio.wait({exited}, timeout=KILL_WAIT_S)
    return cause


def _verdict(
    spec: ScriptSpec, cause: Outcome | None, exited: asyncio.Task, stdout: _Stdout, lines: StderrLines
) -> tuple[Outcome, str, dict | None]:
    """(outcome, reason, result) from why the run stopped, its exit status and its output."""
    if cause == Outcome.CANCELLED:
        return Outcome.CANCELLED, "cancelled", None
    if cause == Outcome.TIMEOUT:
        return Outcome.TIMEOUT, f"timed out after {spec.timeout_s} s", None
    if stdout.overflow.is_set():
        return Outcome.FAILED, f"output exceeded {spec.max_output_bytes} bytes", None
    if not exited.done() or exited.cancelled():
        return Outcome.FAILED, "no exit status after SIGKILL", None
    if exited.exception() is not None:
        return Outcome.FAILED, str(exited.exception()) or "exit status unknown", None
    exit_code, signum = exited.result()
    if exit_code != 0:
        return Outcome.FAILED, exit_reason(exit_code, signum, lines.tail), None
    result, why = result_of(bytes(stdout.data))
    return (Outcome.COMPLETED, "", result) if result is not None else (Outcome.FAILED, why, None)


async def supervise(
    spec: ScriptSpec,
    child: Child,
    pipes: Pipes,
    payload: bytes,
    *,
    started_at: float,
    on_line: Callable[[str], Any] | None,
    on_started: Callable[[int], Any] | None,
    cancel: asyncio.Event | None,
) -> Execution:
    """Run `child` to its end under `spec`'s limits; progress lines go to on_line as they come."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + spec.timeout_s
    stdout = _Stdout(spec.max_output_bytes)
    lines = StderrLines(on_line, spec.max_output_bytes)
    readers = [loop.create_task(pump(pipes.stdout_r, stdout.take)), loop.create_task(_stderr(pipes, lines))]
    feeder = loop.create_task(pipes.feed(payload))
    exited = loop.create_task(child.wait())
    try:
        if on_started is not None:
            await maybe_await(on_started(child.pid))
        cause = await _watch(child, exited, stdout.overflow, cancel, deadline)
        if not _exit_known(exited):
            child.kill()  # launcher lost: its group may still hold the pipes
        # Read to EOF, which also means the group is dead; an escaped (setsid) grandchild may hold them open.
        await asyncio.wait(readers, timeout=DRAIN_S)
    except BaseException:
        child.kill()
        if not exited.done():
            child.abandon()
        raise
    finally:
        await _cancel([feeder, *readers, exited])
    status, reason, result = _verdict(spec, cause, exited, stdout, lines)
    exit_code, signum = exited.result() if _exit_known(exited) else (None, None)
    return Execution(status, result, exit_code, signum, reason, started_at, time.time(), child.pid)
