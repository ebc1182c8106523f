"""One stream socket as the process's hub sees it (Client), and how an evicted one is closed within a bound.

A Client holds at most one pending stream frame (the newest), so a socket that is not writable skips ticks
instead of queueing them; answers to its own requests wait in order in its outbox. An evicted client's close
frame gets CLOSE_WRITE_S to be written and the peer CLOSE_HANDSHAKE_S more to answer it, then the TCP
connection is aborted (RST), through the `abort` the server puts in the scope under TRANSPORT_EXTENSION
(dawn_site.server's uvicorn protocol).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from consciousness.frames import CLOSE_PROTOCOL_ABUSE, PROTOCOL_JSON, PROTOCOL_MSGPACK, TOPICS, Frame
from consciousness.metrics import FRAMES_DROPPED, FRAMES_SENT

if TYPE_CHECKING:
    from consciousness.hub import StreamHub

MAX_HELD = 1000  # stream frames held behind one resume before the client is given up on
MAX_OUTBOX = 5000  # answers and resumed ticks waiting for one client (a resume is at most HISTORY_CAP + held)
# the ASGI scope extension through which the server lets the hub abort a socket: {"abort": callable}
TRANSPORT_EXTENSION = "dawn.transport"
CLOSE_WRITE_S = 1.0  # an evicted client's close frame that cannot be written by then: the connection is aborted
CLOSE_HANDSHAKE_S = 2.0  # a close frame written, the peer's time to answer it before the connection is aborted
# bound once per protocol: a labelled child costs a dict lookup per frame otherwise
_SENT = {p: FRAMES_SENT.labels(protocol=p) for p in (PROTOCOL_JSON, PROTOCOL_MSGPACK)}
_DROPPED = {p: FRAMES_DROPPED.labels(protocol=p) for p in (PROTOCOL_JSON, PROTOCOL_MSGPACK)}


class Client:
    """One local socket as the hub sees it: its protocol, its topics, and at most one stream frame in flight.

    Answers to the client's own requests (and resumed ticks) wait in `outbox`, in order and never
    dropped; stream frames take the one `pending` slot, so a slow socket skips to the newest.
    While a resume is being fetched, stream frames are `held` and released after the replay.
    """

    __slots__ = (
        "id", "send", "abort", "hub", "protocol", "topics", "every", "after", "busy", "pending", "behind",
        "closed", "delivered", "outbox", "held", "sent_count", "dropped_count", "address", "__weakref__",
    )

    def __init__(
        self,
        send: Callable[[dict], Awaitable[None]],
        hub: StreamHub,
        *,
        protocol: str = PROTOCOL_JSON,
        abort: Callable[[], None] | None = None,
        address: str | None = None,
    ) -> None:
        self.id = uuid.uuid4().hex
        self.address = address  # the peer's address, as the server saw it (None: unknown)
        self.send = send
        self.abort = abort  # resets the TCP connection (None where the server offers no such thing)
        self.hub = hub
        self.protocol = protocol
        self.sent_count, self.dropped_count = _SENT[protocol], _DROPPED[protocol]
        self.topics: set[str] = set(TOPICS)
        self.every = 1  # throttle: only ticks whose number is a multiple of this
        self.after = -1  # the newest tick_number this client has been given: never send it one at or below
        self.busy = False
        self.pending: dict | None = None
        self.behind = 0  # frames dropped since the last one that went out
        self.closed = False
        self.delivered = 0
        self.outbox: deque[dict] = deque()
        self.held: list[Frame] | None = None

    def wants(self, frame: Frame) -> bool:
        """Whether this stream frame is for this client (topic, throttle, not already given); marks it given."""
        if frame.topic not in self.topics:
            return False
        number = frame.tick_number
        if number is not None:
            if number <= self.after or number % self.every:
                return False
            self.after = number
        return True

    def offer(self, frame: Frame) -> None:
        """Write a stream frame now if the socket is free, else keep it as the newest pending frame."""
        if self.closed:
            return
        if self.held is not None:
            self.held.append(frame)
            if len(self.held) > MAX_HELD:
                self.hub.evict(self, reason="stream held too long behind a resume")
            return
        if not self.wants(frame):
            return
        message = frame.asgi_for(self.protocol)
        if self.busy:
            if self.pending is not None:
                self.behind += 1
                self.dropped_count.inc()
                if self.behind >= self.hub.slow_after:
                    self.hub.evict(self, reason="slow client")
                    return
            self.pending = message
            return
        self.busy = True
        self._drive(self.send(message))

    def reply(self, frame: Frame) -> None:
        """Queue an answer (or a replayed tick) for this client alone: in order, ahead of the stream."""
        if self.closed:
            return
        if len(self.outbox) >= MAX_OUTBOX:
            self.hub.evict(self, reason="requests sent without reading the answers", code=CLOSE_PROTOCOL_ABUSE)
            return
        message = frame.asgi_for(self.protocol)
        if self.busy:
            self.outbox.append(message)
            return
        self.busy = True
        self._drive(self.send(message))

    def hold(self) -> None:
        """Keep stream frames aside (a resume is being fetched)."""
        if self.held is None:
            self.held = []

    def release(self) -> None:
        """Let the held stream frames through, after what the outbox already has, then go live."""
        held, self.held = self.held or [], None
        for frame in held:
            if self.wants(frame):
                self.reply(frame)

    def _drive(self, coro: Any) -> None:
        # Run the send coroutine inline: on a writable socket it finishes without suspending, which
        # saves a Task per delivered message; when it does suspend, resume it from the awaited future.
        try:
            yielded = coro.send(None)
        except StopIteration:
            self._sent()
            return
        except BaseException as exc:  # the socket went away: forget the client
            self.busy = False
            self.hub.evict(self, reason=f"send failed: {exc!r}", notify=False)
            return
        if yielded is None:
            asyncio.get_running_loop().call_soon(self._drive, coro)
        elif getattr(yielded, "_asyncio_future_blocking", False):
            yielded._asyncio_future_blocking = False
            yielded.add_done_callback(lambda _future: self._drive(coro))
        else:
            coro.close()
            self.busy = False
            self.hub.evict(self, reason=f"send awaited an unsupported object {yielded!r}", notify=False)

    def _sent(self) -> None:
        self.delivered += 1
        self.sent_count.inc()
        self.behind = 0
        if self.outbox and not self.closed:
            self._drive(self.send(self.outbox.popleft()))
            return
        message, self.pending = self.pending, None
        if message is None or self.closed:
            self.busy = False
        else:
            self._drive(self.send(message))


async def close_bounded(client: Client, close: dict) -> None:
    """Send the close frame; abort the connection if it is not written within CLOSE_WRITE_S, or if the
    peer has not completed the closing handshake CLOSE_HANDSHAKE_S later (aborting a closed one is a no-op)."""
    try:
        async with asyncio.timeout(CLOSE_WRITE_S):
            await client.send(close)
    except Exception:  # not writable in time (a peer that does not read), or already gone
        if client.abort is not None:
            client.abort()
        return
    if client.abort is not None:
        asyncio.get_running_loop().call_later(CLOSE_HANDSHAKE_S, client.abort)
