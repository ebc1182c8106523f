"""Channel-layer membership: the group names, the one member per process, and publishers that never block.

The engine publishes each outbound message once to STREAM_GROUP, whatever the number of clients; each
serving process has exactly one member there (its StreamHub). Clients and workers reach the engine
through ENGINE_GROUP, where runtick's inbox is the member.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from pathlib import PurePath
from typing import Any

from consciousness.engine import StepResult
from consciousness.frames import tick_message
from consciousness.metrics import LAYER_ERRORS

logger = logging.getLogger(__name__)

# Each serving process joins STREAM_GROUP once (not once per socket) and fans out locally.
STREAM_GROUP = "dawn.stream"
# runtick listens here for what clients and workers send to the engine (stimuli, wake-ups).
ENGINE_GROUP = "dawn.engine"
# channels_redis forgets group members after its group_expiry (an hour here): re-join well before
GROUP_REFRESH_S = 600.0
# a membership that lapsed (a failed join, a layer that was down or restarted empty) is retried this often
REJOIN_RETRY_S = 1.0
LEAVE_TIMEOUT_S = 2.0
STATUS_INTERVAL_S = 1.0  # how often runtick publishes its status on the stream (STREAM_STATUS)

# channel-layer message types (the envelope; the outbound message rides inside unchanged)
# {"message": tick message, "epoch": str, "rate": Hz, "paused": bool, "stimuli": [{"key", "ref"}]}
STREAM_TICK = "stream.tick"
STREAM_EVENT = "stream.event"  # {"message": any other outbound message}
STREAM_STATUS = "stream.status"  # {"epoch": str, "status": runtick's status report (HistoryWriter.status)}
# {"state": {"paused", "rate", "tick_number", "epoch"}, "message": control message or None,
#  "reply": {"command", "outcome", "detail"} or None}: a command handled, or (state alone) the pause's heartbeat
STREAM_CONTROL = "stream.control"
ENGINE_STIMULUS = "engine.stimulus"  # {"kind", "intensity", "ref", "key"}: a client's stimulus
# {"command", "action", "ticks", "rate", "user", "by", "requested_at", "expires"}: a control command
ENGINE_CONTROL = "engine.control"
ENGINE_PROCESSES = "engine.processes"  # a run was queued: claim it now rather than at the next poll
ENGINE_PROCESS_CANCEL = "engine.process_cancel"  # {"run": id}: stop a running run


def quiet_layer_task_failures(loop: asyncio.AbstractEventLoop) -> None:
    """Log a channel-layer background task that failed with the layer unreachable in one line, not a traceback.

    channels_redis cleans its receive backup in a task nobody awaits: when Redis goes away just then,
    asyncio reports "Task exception was never retrieved" with a traceback, for an outage the members
    already report and survive. Everything else goes to the handler that was there before. Idempotent.
    """
    previous = loop.get_exception_handler()
    if getattr(previous, "quiets_layer_tasks", False):
        return

    def handle(loop: asyncio.AbstractEventLoop, context: dict) -> None:
        # an unretrieved exception's context names the task "future"
        task, exc = context.get("future") or context.get("task"), context.get("exception")
        coro = task.get_coro() if isinstance(task, asyncio.Task) else None
        code = getattr(coro, "cr_code", None)  # a finished coroutine keeps its code, not its frame
        if code is not None and "channels_redis" in PurePath(code.co_filename).parts and _unreachable(exc):
            LAYER_ERRORS.labels(operation="background").inc()
            failure = f"{type(exc).__name__}: {exc}"
            logger.warning("a channel-layer background task failed (%s): %s", coro.__qualname__, failure)
        elif previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    handle.quiets_layer_tasks = True
    loop.set_exception_handler(handle)


def _unreachable(exc: BaseException | None) -> bool:
    """The layer's server could not be reached or went away (OSError, or any of redis-py's errors)."""
    return isinstance(exc, OSError | TimeoutError) or type(exc).__module__.startswith("redis.")


class GroupMember:
    """One channel of this process in a group, received from in a background task.

    It re-joins the group periodically (before the layer's group expiry), and every REJOIN_RETRY_S
    while the membership is in doubt (a join that failed, a layer that was down or came back empty), so
    membership never lapses silently; each message goes to `handle`. `status()` says how it stands.
    """

    def __init__(self, group: str, handle: Callable[[dict], None], *, name: str) -> None:
        self.group = group
        self.handle = handle
        self.name = name
        self.channel: str | None = None
        self.joined = False  # the last group_add succeeded
        self.receive_failures = 0  # consecutive failed receives (0 once a message comes through)
        self.last_error: str | None = None
        self.layer: Any = None  # the channel layer it joined through (None until it joins)
        self._tasks: list[asyncio.Task] = []
        self._lapsed = asyncio.Event()

    @property
    def running(self) -> bool:
        return bool(self._tasks) and not self._tasks[0].done()

    def status(self) -> dict:
        """Whether the member is in its group and receiving, and the layer's last error."""
        error = self.last_error if self.receive_failures or not self.joined else None
        return {"joined": self.joined, "receive_failures": self.receive_failures, "error": error}

    async def join(self, layer: Any) -> None:
        """Join and start receiving; a layer that is down now is joined as soon as it answers."""
        self.layer = layer
        quiet_layer_task_failures(asyncio.get_running_loop())
        # the default prefix: channels_redis serves all of a process's channels from one queue, so
        # channels under another prefix would wait for each other's blocking reads
        self.channel = await layer.new_channel()
        await self._rejoin()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._receive_loop(), name=self.name),
            loop.create_task(self._keep_joined(), name=f"{self.name}:rejoin"),
        ]

    async def leave(self) -> None:
        """Stop receiving and leave the group, within LEAVE_TIMEOUT_S whatever the layer does."""
        for task in self._tasks:
            task.cancel()
        tasks, self._tasks = self._tasks, []
        # bounded: a receive cancelled inside a layer's blocking read must not hold a shutdown up
        done, stuck = await asyncio.wait(tasks, timeout=LEAVE_TIMEOUT_S) if tasks else (set(), set())
        if stuck:
            logger.warning("%s: %d receive tasks still stuck after cancel; leaving anyway", self.name, len(stuck))
        if self.layer is not None and self.channel is not None:
            try:
                async with asyncio.timeout(LEAVE_TIMEOUT_S):
                    await self.layer.group_discard(self.group, self.channel)
            except (Exception, TimeoutError):
                pass  # the layer forgets the member at its group expiry anyway

    async def _rejoin(self) -> None:
        try:
            async with asyncio.timeout(LEAVE_TIMEOUT_S):
                await self.layer.group_add(self.group, self.channel)
        except Exception as exc:
            if self.joined or self.last_error is None:
                logger.warning(
                    "%s cannot join %s (retrying every %g s): %r", self.name, self.group, REJOIN_RETRY_S, exc
                )
            self.joined = False
            self.last_error = repr(exc)
            self._lapsed.set()
            return
        if not self.joined and self.last_error is not None:
            logger.info("%s joined %s again", self.name, self.group)
        self.joined = True
        self.receive_failures = 0  # the layer answered: a receive that failed before may work now
        self._lapsed.clear()

    async def _keep_joined(self) -> None:
        # a timer of its own: the receive loop may wait far longer than the expiry for a message, and a
        # layer that restarted empty forgets the member without the blocking read ever failing
        while True:
            if self._lapsed.is_set():
                await asyncio.sleep(REJOIN_RETRY_S)
            else:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(GROUP_REFRESH_S):
                        await self._lapsed.wait()
                if self._lapsed.is_set():
                    continue  # lapsed meanwhile: retry after REJOIN_RETRY_S
            await self._rejoin()

    async def _receive_loop(self) -> None:
        failures = 0
        while True:
            try:
                message = await self.layer.receive(self.channel)
                failures = self.receive_failures = 0
            except Exception as exc:  # e.g. Redis restarting: keep trying, re-join when it is back
                failures += 1
                self.receive_failures = failures
                self.last_error = repr(exc)
                LAYER_ERRORS.labels(operation="receive").inc()
                if failures in (1, 10) or failures % 100 == 0:
                    logger.warning("%s cannot receive from the channel layer (%d): %r", self.name, failures, exc)
                # whatever the layer lost while it failed, the membership goes with it: join again
                self.joined = False
                self._lapsed.set()
                await asyncio.sleep(min(0.1 * failures, 2.0))
                await self._rejoin()
                continue
            try:
                self.handle(message)
            except Exception:
                logger.exception("%s could not handle %r", self.name, message.get("type"))


class _GroupPublisher:
    """Send to a group from a background task, so a slow or absent layer never holds up the caller."""

    def __init__(self, layer: Any, group: str, *, timeout: float) -> None:
        self.layer = layer
        self.group = group
        self.timeout = timeout
        self.failed = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._closed = False

    def _poke(self) -> None:
        self._wake.set()
        if not self._closed and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(self._drain(), name=f"publish:{self.group}")

    def _take(self) -> dict | None:
        raise NotImplementedError

    async def _send(self, message: dict) -> bool:
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
        try:
            async with asyncio.timeout(self.timeout):
                await self.layer.group_send(self.group, message)
            return True
        except Exception as exc:  # the layer's outage must not end the stream for good
            self.failed += 1
            LAYER_ERRORS.labels(operation="send").inc()
            if self.failed in (1, 10) or self.failed % 100 == 0:
                logger.warning("group_send to %s failed (%d so far): %r", self.group, self.failed, exc)
            return False

    async def _drain(self) -> None:
        while not self._closed:
            await self._wake.wait()
            self._wake.clear()
            while not self._closed and (message := self._take()) is not None:
                await self._send(message)

    async def close(self, *, deliver: bool = True) -> None:
        """Deliver what is waiting (each send bounded by the timeout), or drop it, then stop."""
        self._closed = True
        self._wake.set()
        if self._task is not None:
            if not deliver:
                self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        while deliver and (message := self._take()) is not None:
            if not await self._send(message):
                break


class LatestPublisher(_GroupPublisher):
    """The tick loop drops each message into a one-slot mailbox: a message still waiting when the
    next arrives is replaced, so a slow or absent Redis delays the stream but never the engine."""

    def __init__(self, layer: Any, group: str, *, timeout: float = 2.0) -> None:
        super().__init__(layer, group, timeout=timeout)
        self._pending: dict | None = None
        self.replaced = 0

    def offer(self, message: dict) -> None:
        if self._pending is not None:
            self.replaced += 1
        self._pending = message
        self._poke()

    def _take(self) -> dict | None:
        message, self._pending = self._pending, None
        return message


class QueuePublisher(_GroupPublisher):
    """Messages go out in order; past `limit` waiting, the oldest go."""

    def __init__(self, layer: Any, group: str, *, limit: int = 1000, timeout: float = 2.0) -> None:
        super().__init__(layer, group, timeout=timeout)
        self._queue: deque[dict] = deque(maxlen=limit)

    def offer(self, message: dict) -> None:
        self._queue.append(message)
        self._poke()

    def _take(self) -> dict | None:
        return self._queue.popleft() if self._queue else None


class StreamPublisher:
    """runtick's side of the stream: each tick and each event goes once to STREAM_GROUP.

    A tick sink for the loop: it carries the tick message with the epoch and the keys of the stimuli
    the tick applied (`applied()`), so that every serving process can acknowledge its own clients'.
    """

    def __init__(
        self,
        layer: Any,
        *,
        epoch: str,
        applied: Callable[[], list[dict]],
        rate: float,
        status: Callable[[], dict] | None = None,
    ) -> None:
        self.epoch = epoch
        self.applied = applied
        self.rate = rate
        self.status = status  # runtick's status report, published every STATUS_INTERVAL_S (None: never)
        self.paused = False
        self._ticks = LatestPublisher(layer, STREAM_GROUP)
        self._events = QueuePublisher(layer, STREAM_GROUP)
        self._status = LatestPublisher(layer, STREAM_GROUP)
        self._status_task: asyncio.Task | None = None

    def start(self) -> None:
        """Publish the status report now and every STATUS_INTERVAL_S, whether ticks flow or not."""
        if self.status is not None and self._status_task is None:
            loop = asyncio.get_running_loop()
            self._status_task = loop.create_task(self._publish_status(), name="publish:status")

    async def _publish_status(self) -> None:
        while True:
            try:
                self._status.offer({"type": STREAM_STATUS, "epoch": self.epoch, "status": self.status()})
            except Exception:  # a report that cannot be made must not end the reports
                logger.exception("could not make the status report")
            await asyncio.sleep(STATUS_INTERVAL_S)

    async def __call__(self, result: StepResult) -> None:
        envelope = {"type": STREAM_TICK, "message": tick_message(result.tick), "epoch": self.epoch, "rate": self.rate}
        envelope["paused"] = self.paused
        stimuli = self.applied()
        if stimuli:
            envelope["stimuli"] = stimuli
        self._ticks.offer(envelope)

    def event(self, message: dict) -> None:
        """Publish any other outbound message (a run's status, a line of its output) in order."""
        self._events.offer({"type": STREAM_EVENT, "message": message})

    def control(self, *, state: dict, message: dict | None = None, reply: dict | None = None) -> None:
        """Publish the engine's control state, with a command's stream message and its answer to the sender."""
        self._events.offer({"type": STREAM_CONTROL, "state": state, "message": message, "reply": reply})

    async def close(self) -> None:
        if self._status_task is not None:
            self._status_task.cancel()
            await asyncio.gather(self._status_task, return_exceptions=True)
        await self._ticks.close()
        await self._events.close()
        await self._status.close(deliver=False)  # a report of a process that is going is no news
