"""Per-process fan-out: receive each tick once from the channel layer, encode it once, write it to every socket.

Stock Channels makes every socket a group member, so each tick costs one layer message per client.
Here each serving process owns one StreamHub, the only group member of that process; the hub encodes
the frame once and hands the same ASGI message to each local client. A client whose socket is not
writable keeps at most one pending frame (the newest), so it skips ticks instead of queueing them,
and is closed when it stays behind.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings

from consciousness.frames import CLOSE_SLOW_CLIENT, Frame, stimulus_applied_message
from consciousness.groups import STREAM_EVENT, STREAM_GROUP, STREAM_TICK, GroupMember
from consciousness.metrics import FRAMES_DROPPED, FRAMES_SENT

logger = logging.getLogger(__name__)

_FIRST_FREEZE_AT = 64
# bound once: a labelled child costs a dict lookup per frame otherwise
_SENT_JSON, _DROPPED_JSON = FRAMES_SENT.labels(protocol="json"), FRAMES_DROPPED.labels(protocol="json")


class Client:
    """One local socket as the hub sees it: an ASGI send callable and at most one frame in flight."""

    __slots__ = ("id", "send", "hub", "busy", "pending", "behind", "closed", "delivered", "__weakref__")

    def __init__(self, send: Callable[[dict], Awaitable[None]], hub: StreamHub) -> None:
        self.id = uuid.uuid4().hex
        self.send = send
        self.hub = hub
        self.busy = False
        self.pending: dict | None = None
        self.behind = 0  # frames dropped since the last one that went out
        self.closed = False
        self.delivered = 0

    def offer(self, frame: Frame) -> None:
        """Write `frame` now if the socket is free, else keep it as the newest pending frame."""
        message = frame.asgi
        if self.closed:
            return
        if self.busy:
            if self.pending is not None:
                self.behind += 1
                _DROPPED_JSON.inc()
                if self.behind >= self.hub.slow_after:
                    self.hub.evict(self, reason="slow client")
                    return
            self.pending = message
            return
        self.busy = True
        self._drive(self.send(message))

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
        _SENT_JSON.inc()
        self.behind = 0
        message, self.pending = self.pending, None
        if message is None or self.closed:
            self.busy = False
        else:
            self._drive(self.send(message))


class StreamHub:
    """The one channel-layer member of a serving process, and its local clients."""

    def __init__(self, *, slow_after: int = 50) -> None:
        self.slow_after = slow_after
        self.clients: dict[str, Client] = {}
        self.latest_tick: dict | None = None
        self.latest_epoch: str | None = None
        self.latest_received_at: float | None = None
        self.evicted = 0
        self._member = GroupMember(STREAM_GROUP, self.dispatch, name="dawn-stream-hub")
        self._starting: asyncio.Future | None = None
        self._next_freeze = _FIRST_FREEZE_AT
        self._stimulus_origin: dict[str, str] = {}

    @property
    def running(self) -> bool:
        return self._member.running

    @property
    def channel(self) -> str | None:
        return self._member.channel

    async def start(self) -> None:
        """Join the stream group once for this process (idempotent, safe to race)."""
        if self.running:
            return
        if self._starting is None or self._starting.done():
            self._starting = asyncio.ensure_future(self._start())
        await asyncio.shield(self._starting)

    async def _start(self) -> None:
        layer = get_channel_layer()
        if layer is None:
            raise RuntimeError("no channel layer configured")
        await self._member.join(layer)
        # the long-lived start-up objects never need scanning again: keep them out of GC pauses
        gc.freeze()

    async def stop(self) -> None:
        await self._member.leave()

    def dispatch(self, envelope: dict) -> None:
        kind = envelope.get("type")
        if kind == STREAM_TICK:
            tick = envelope["message"]["data"]
            self.latest_tick = tick
            self.latest_epoch = envelope.get("epoch")
            self.latest_received_at = time.time()
            self.broadcast(Frame(envelope["message"]))
            if envelope.get("stimuli"):
                self._acknowledge(envelope["stimuli"], tick["tick_number"])
        elif kind == STREAM_EVENT:
            self.broadcast(Frame(envelope["message"]))

    def broadcast(self, frame: Frame) -> None:
        """Offer one frame, encoded once, to every local client."""
        for client in list(self.clients.values()):
            client.offer(frame)

    def register(self, client: Client) -> None:
        self.clients[client.id] = client
        if len(self.clients) >= self._next_freeze:
            gc.freeze()
            self._next_freeze *= 2

    def unregister(self, client: Client) -> None:
        client.closed = True
        self.clients.pop(client.id, None)

    def evict(self, client: Client, *, reason: str, notify: bool = True) -> None:
        """Stop feeding a client; if it can still hear, tell it why with a close code."""
        if client.closed:
            return
        self.unregister(client)
        self.evicted += 1
        logger.info("closing stream client %s: %s", client.id, reason)
        if notify:
            close = {"type": "websocket.close", "code": CLOSE_SLOW_CLIENT, "reason": reason}
            asyncio.get_running_loop().create_task(_send_quietly(client.send, close))

    def remember_stimulus(self, ref: str, client: Client) -> None:
        self._stimulus_origin[ref] = client.id
        if len(self._stimulus_origin) > 10_000:  # refs of clients that left before their tick
            self._stimulus_origin.pop(next(iter(self._stimulus_origin)))

    def _acknowledge(self, stimuli: list[dict], tick_number: int) -> None:
        """Tell the local clients that sent these stimuli which tick applied them."""
        for item in stimuli:
            client_id = self._stimulus_origin.pop(item.get("key") or "", None)
            client = self.clients.get(client_id) if client_id else None
            if client is not None:
                client.offer(Frame(stimulus_applied_message(ref=item.get("ref"), tick_number=tick_number)))


async def _send_quietly(send: Callable[[dict], Awaitable[None]], message: dict, timeout: float = 5.0) -> None:
    try:
        async with asyncio.timeout(timeout):
            await send(message)
    except Exception:
        pass


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, StreamHub] = weakref.WeakKeyDictionary()


def stream_hub() -> StreamHub:
    """This process's hub for the running event loop (one per loop, so tests with fresh loops stay apart)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = StreamHub(slow_after=settings.DAWN_CONFIG["stream"]["slow_client_ticks"])
    return hub


def stream_hub_latest() -> StreamHub | None:
    """The hub of any loop in this process, for sync code (HTTP views run in threads)."""
    for hub in list(_hubs.values()):
        if hub.running:
            return hub
    return None
