"""Engine control (pause, resume, step N ticks while paused, set the rate): sent by any server, run by runtick.

A serving process (a REST view, a /ws consumer) sends an ENGINE_CONTROL envelope to ENGINE_GROUP and waits
on its stream hub, ACK_TIMEOUT_S at most, for the STREAM_CONTROL envelope that answers it. runtick's
Controller hands each command to the tick loop, which applies it between two ticks; the outcome goes out once
on the stream (the `control` message for every client, the answer for its sender, the engine's state for
every hub) and is journalled as an EngineControl row. While the engine is paused its state is re-published
every heartbeat, so that each serving process's /health/ tells a paused engine from a stale one.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import close_old_connections, connections

from consciousness import services
from consciousness.frames import control_message, rate_value
from consciousness.groups import ENGINE_CONTROL, StreamPublisher
from consciousness.hub import stream_hub
from consciousness.loop import Command, CommandInvalid, CommandOutcome, TickLoop
from consciousness.metrics import DATABASE_ERRORS
from consciousness.models import EngineControl

logger = logging.getLogger(__name__)

CONTROL_PERMISSION = "consciousness.control_engine"
ACK_TIMEOUT_S = 2.0  # how long a sender waits for the engine's answer; the engine drops a command older

Outcome = EngineControl.Outcome
APPLIED, REFUSED, EXPIRED = Outcome.APPLIED.value, Outcome.REFUSED.value, Outcome.EXPIRED.value
UNANSWERED = "unanswered"  # the sender's side only: no answer came in time


@dataclass(frozen=True)
class ControlAnswer:
    """What became of a command: `outcome` applied, refused, expired or unanswered; `data` as streamed."""

    outcome: str
    detail: str
    data: dict | None


def requester(user: Any, client: str | None) -> tuple[int | None, str]:
    """Who sends a command: the user's id and name, or (open writes) local play from the client's address."""
    if user is not None and user.is_authenticated:
        return user.pk, user.get_username()
    return None, f"local play ({client or 'unknown address'})"


async def control_request(command: Command, *, user_id: int | None, by: str) -> ControlAnswer:
    """Send `command` to the engine, wherever it runs, and wait for its outcome (ACK_TIMEOUT_S at most).

    Raises what the channel layer raises when the command cannot be sent.
    """
    now = time.time()
    envelope = {
        "type": ENGINE_CONTROL,
        "command": uuid.uuid4().hex,
        "action": command.action,
        "ticks": command.ticks,
        "rate": command.rate,
        "user": user_id,
        "by": by,
        "requested_at": now,
        "expires": now + ACK_TIMEOUT_S,
    }
    reply = await stream_hub().control_request(envelope, timeout=ACK_TIMEOUT_S)
    if reply is None:
        detail = f"the engine did not answer within {ACK_TIMEOUT_S:g} s; it drops the command if it comes late"
        return ControlAnswer(UNANSWERED, detail, None)
    return ControlAnswer(reply["outcome"], reply["detail"], reply["data"])


class Controller:
    """runtick's side: commands from the inbox go to the loop; each outcome is published, answered, recorded.

    `receive` is the inbox's handler for ENGINE_CONTROL, `on_command` the loop's; journal rows are written on
    a thread of their own, in order, so that the event loop never waits for the database.
    """

    def __init__(
        self,
        *,
        stream: StreamPublisher,
        epoch: uuid.UUID,
        heartbeat_s: float,
        wallclock: Callable[[], float] = time.time,
    ) -> None:
        self.stream = stream
        self.epoch = epoch
        self.heartbeat_s = heartbeat_s
        self.wallclock = wallclock
        self.loop: TickLoop | None = None
        self.failures = 0
        self._writes: list[asyncio.Future] = []
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dawn-control")

    def attach(self, loop: TickLoop) -> None:
        self.loop = loop
        self.stream.rate, self.stream.paused = loop.rate, loop.paused

    def state(self) -> dict:
        loop = self.loop
        number = loop.engine.state.tick_number
        return {"paused": loop.paused, "rate": loop.rate, "tick_number": number, "epoch": str(self.epoch)}

    def receive(self, message: dict) -> None:
        """A command from any serving process: to the loop, unless it is malformed or came too late."""
        try:
            uuid.UUID(message.get("command"))
        except (ValueError, TypeError, AttributeError):
            logger.warning("dropping a control message without a command id")
            return
        if self.loop is None:
            return  # not ticking yet or any more: its sender hears nothing and says so
        try:
            command = Command(
                action=message.get("action"), ticks=message.get("ticks"), rate=message.get("rate"),
                ref=message,
            )
        except (CommandInvalid, TypeError) as exc:  # the senders validate first; this guards others
            self._refuse(message, None, REFUSED, f"not a command the engine takes: {exc}")
            return
        expires = message.get("expires")
        if not isinstance(expires, (int, float)) or self.wallclock() > expires:
            late = "reached the engine after its sender stopped waiting; not applied"
            self._refuse(message, command, EXPIRED, late)
            return
        self.loop.command(command)

    def _refuse(self, message: dict, command: Command | None, outcome: str, detail: str) -> None:
        state = self.state()
        self._answer(
            message, command, outcome=outcome, detail=detail, tick_number=state["tick_number"],
            paused=state["paused"], rate=state["rate"],
        )

    def on_command(self, outcome: CommandOutcome) -> None:
        """The loop applied (or refused) a command at a boundary: tell the stream, the sender, the journal."""
        self.stream.rate, self.stream.paused = outcome.rate, outcome.paused
        self._answer(
            outcome.command.ref, outcome.command, outcome=APPLIED if outcome.applied else REFUSED,
            detail=outcome.detail, tick_number=outcome.tick_number, paused=outcome.paused, rate=outcome.rate,
        )

    def _answer(
        self, message: dict, command: Command | None, *, outcome: str, detail: str, tick_number: int,
        paused: bool, rate: float,
    ) -> None:
        """Publish the state and the answer (and, applied, the `control` message); journal a valid command."""
        action = command.action if command is not None else str(message.get("action"))[:20]
        ticks, argument = (command.ticks, command.rate) if command is not None else (None, None)
        stream = control_message(
            command=message["command"], action=action, ticks=ticks, rate=argument, tick_number=tick_number,
            paused=paused, tick_rate=rate, by=str(message.get("by") or "unknown")[:150],
            epoch=str(self.epoch),
        )
        state = {"paused": paused, "rate": rate, "tick_number": tick_number, "epoch": str(self.epoch)}
        reply = {"command": message["command"], "outcome": outcome, "detail": detail, "data": stream["data"]}
        self.stream.control(state=state, message=stream if outcome == APPLIED else None, reply=reply)
        if command is None:
            return  # nothing a row could name
        row = dict(
            command=uuid.UUID(message["command"]), action=action, ticks=ticks, rate=argument,
            outcome=outcome, detail=detail, tick_number=tick_number, paused=paused,
            tick_rate=rate_value(rate), epoch=self.epoch,
            requested_by_id=message.get("user") if isinstance(message.get("user"), int) else None,
            label=stream["data"]["by"], requested_at=_moment(message.get("requested_at")),
            applied_at=_moment(self.wallclock()),
        )
        self._writes = [w for w in self._writes if not w.done()]
        future = asyncio.get_running_loop().run_in_executor(self._executor, self._write, row)
        future.add_done_callback(self._written)
        self._writes.append(future)

    def _write(self, row: dict) -> None:
        close_old_connections()
        services.control_record(**row)

    def _written(self, future: asyncio.Future) -> None:
        if future.cancelled() or future.exception() is None:
            return
        self.failures += 1
        DATABASE_ERRORS.labels(component="control").inc()
        logger.error("could not journal a control command: %r", future.exception())

    async def heartbeat(self) -> None:
        """While paused, re-publish the state every heartbeat_s (no tick says it lives); until cancelled."""
        while True:
            await asyncio.sleep(self.heartbeat_s)
            if self.loop is not None and self.loop.paused:
                self.stream.control(state=self.state())

    async def close(self) -> None:
        """Wait for the journal rows under way, then release the thread."""
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
        await asyncio.get_running_loop().run_in_executor(self._executor, connections.close_all)
        self._executor.shutdown(wait=True)


def _moment(seconds: object) -> datetime:
    value = seconds if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) else time.time()
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return datetime.now(tz=UTC)
