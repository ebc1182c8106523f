"""From the engine to the channel layer: one message per tick, whatever the number of clients."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

from consciousness.engine import StepResult

logger = logging.getLogger(__name__)

# Each serving process joins STREAM_GROUP once (not once per socket) and fans out locally.
STREAM_GROUP = "dawn.stream"
# runtick listens here for what clients and workers send to the engine (stimuli, wake-ups).
ENGINE_GROUP = "dawn.engine"


def tick_payload(result: StepResult) -> dict:
    """The tick in the seed's Tick Data Format; pure and JSON-safe."""
    return result.tick


class LatestPublisher:
    """Send messages to a group from a background task, newest first.

    The tick loop only drops the message into a one-slot mailbox, so a slow or absent Redis delays
    the stream but never the engine: a message still waiting when the next arrives is replaced.
    """

    def __init__(self, layer: Any, group: str, *, timeout: float = 2.0) -> None:
        self.layer = layer
        self.group = group
        self.timeout = timeout
        self._pending: dict | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.sent = 0
        self.replaced = 0
        self.failed = 0

    def offer(self, message: dict) -> None:
        if self._pending is not None:
            self.replaced += 1
        self._pending = message
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain(), name=f"publish:{self.group}")

    async def _drain(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            message, self._pending = self._pending, None
            if message is None:
                continue
            try:
                await asyncio.wait_for(self.layer.group_send(self.group, message), self.timeout)
                self.sent += 1
            except Exception as exc:  # the layer's outage must not end the stream for good
                self.failed += 1
                if self.failed in (1, 10) or self.failed % 100 == 0:
                    logger.warning("group_send to %s failed (%d so far): %r", self.group, self.failed, exc)

    async def close(self) -> None:
        """Deliver what is pending (bounded by the timeout), then stop."""
        if self._task is None:
            return
        if self._pending is not None:
            message, self._pending = self._pending, None
            try:
                await asyncio.wait_for(self.layer.group_send(self.group, message), self.timeout)
            except Exception:
                pass
        self._task.cancel()
        try:
            await self._task
        except BaseException:
            pass


class QueuePublisher:
    """Send messages to a group in order from a background task; past `limit` waiting, the oldest go."""

    def __init__(self, layer: Any, group: str, *, limit: int = 1000, timeout: float = 2.0) -> None:
        self.layer = layer
        self.group = group
        self.timeout = timeout
        self._queue: deque[dict] = deque(maxlen=limit)
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    def offer(self, message: dict) -> None:
        self._queue.append(message)
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain(), name=f"publish-queue:{self.group}")

    async def _drain(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                try:
                    await asyncio.wait_for(self.layer.group_send(self.group, self._queue.popleft()), self.timeout)
                except Exception as exc:
                    logger.warning("group_send to %s failed: %r", self.group, exc)

    async def close(self) -> None:
        """Deliver what is queued (bounded by the timeout per message), then stop."""
        if self._task is None:
            return
        while self._queue:
            try:
                await asyncio.wait_for(self.layer.group_send(self.group, self._queue.popleft()), self.timeout)
            except Exception:
                break
        self._task.cancel()
        try:
            await self._task
        except BaseException:
            pass
