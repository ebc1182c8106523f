"""File-descriptor plumbing on the running asyncio loop: the child's stdio pipes, fd waits, reads, writes."""
from __future__ import annotations

import asyncio
import inspect
import os
import signal
from typing import Any, Awaitable, Callable

READ_CHUNK = 65536


def kill_group(pgid: int) -> None:
    """SIGKILL the process group `pgid`; a group already gone is not an error."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


async def maybe_await(value: Any) -> None:
    """Await `value` if a callback returned an awaitable (callbacks may be plain or async)."""
    if inspect.isawaitable(value):
        await value


async def wait_fd(fd: int, *, write: bool = False) -> None:
    """Wait until `fd` is readable (or writable)."""
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


async def pump(fd: int, on_chunk: Callable[[bytes], Awaitable[None]]) -> None:
    """Read a non-blocking fd until EOF, passing each chunk on."""
    while True:
        try:
            data = os.read(fd, READ_CHUNK)
        except BlockingIOError:
            await wait_fd(fd)
            continue
        if not data:
            return
        await on_chunk(data)


class Pipes:
    """stdin/stdout/stderr pipes: child ends are handed over, parent ends read/written here."""

    _NAMES = ("stdin_r", "stdin_w", "stdout_r", "stdout_w", "stderr_r", "stderr_w")

    def __init__(self) -> None:
        self.stdin_r, self.stdin_w = os.pipe()
        self.stdout_r, self.stdout_w = os.pipe()
        self.stderr_r, self.stderr_w = os.pipe()
        for fd in (self.stdin_w, self.stdout_r, self.stderr_r):
            os.set_blocking(fd, False)

    @property
    def child_ends(self) -> list[int]:
        """The child's stdin, stdout and stderr, in that order."""
        return [self.stdin_r, self.stdout_w, self.stderr_w]

    def close_child_ends(self) -> None:
        """Close the ends the child now holds, so EOF on stdout/stderr means the child closed them."""
        for name in ("stdin_r", "stdout_w", "stderr_w"):
            self._close(name)

    def close_all(self) -> None:
        """Close every end still open (idempotent)."""
        for name in self._NAMES:
            self._close(name)

    async def feed(self, payload: bytes) -> None:
        """Write the request to the child's stdin, then close it."""
        try:
            view = memoryview(payload)
            while view:
                try:
                    view = view[os.write(self.stdin_w, view) :]
                except BlockingIOError:
                    await wait_fd(self.stdin_w, write=True)
        except BrokenPipeError:
            pass  # the child exited without reading; its exit status tells why
        finally:
            self._close("stdin_w")

    def _close(self, name: str) -> None:
        fd = getattr(self, name)
        if fd is not None:
            setattr(self, name, None)
            try:
                os.close(fd)
            except OSError:
                pass
