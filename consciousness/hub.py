"""Per-process fan-out: receive each tick once from the channel layer, encode it once, write it to every socket.

Stock Channels makes every socket a group member, so each tick costs one layer message per client.
Here each serving process owns one StreamHub, the only group member of that process; the hub encodes
the frame once and hands the same ASGI message to each local client. A client whose socket is not
writable keeps at most one pending frame (the newest), so it skips ticks instead of queueing them,
and is closed when it stays behind. The hub also keeps the latest ticks in a ring, so a client that
reconnects can resume from memory, and the database only serves what the ring no longer holds.

Each local socket is a consciousness.sockets.Client; an evicted one is gone for real within a bound
(sockets.close_bounded).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
import weakref
from collections import Counter, deque

from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings

from consciousness.frames import CLOSE_SLOW_CLIENT, Frame, error_message, stimulus_applied_message
from consciousness.groups import (
    ENGINE_GROUP,
    STREAM_CONTROL,
    STREAM_EVENT,
    STREAM_GROUP,
    STREAM_STATUS,
    STREAM_TICK,
    GroupMember,
)
from consciousness.sockets import Client, close_bounded

logger = logging.getLogger(__name__)

_FIRST_FREEZE_AT = 64
RING_SIZE = 3000  # recent ticks each serving process keeps for resumes: five minutes at 10 Hz


class StreamHub:
    """The one channel-layer member of a serving process, its local clients, and a ring of recent ticks."""

    def __init__(
        self, *, slow_after: int = 50, ring_size: int = RING_SIZE, tick_rate: float = 10.0,
        max_per_address: int | None = None,
    ) -> None:
        self.slow_after = slow_after
        self.max_per_address = max_per_address  # sockets one address may hold here (None: no cap)
        self.clients: dict[str, Client] = {}
        self.per_address: Counter[str] = Counter()
        self.latest_tick: dict | None = None
        self.latest_epoch: str | None = None
        self.latest_received_at: float | None = None
        self.tick_rate = tick_rate  # the engine's, as its envelopes say (config.yaml's until the first)
        self.engine_status: dict | None = None  # runtick's latest status report (STREAM_STATUS), for /health/
        self.engine_status_at: float | None = None
        self.paused = False  # the engine's, as its ticks and control messages say
        self.state_heard_at: float | None = None  # when the engine last said either (epoch seconds)
        self._heard = asyncio.Event()  # set once the engine said anything: a tick, or its control state
        self.ring: deque[Frame] = deque(maxlen=ring_size)  # the latest ticks of latest_epoch, oldest first
        self.evicted = 0
        self._member = GroupMember(STREAM_GROUP, self.dispatch, name="dawn-stream-hub")
        self._starting: asyncio.Future | None = None
        self._next_freeze = _FIRST_FREEZE_AT
        self._stimulus_origin: dict[str, str] = {}
        self._control_waiters: dict[str, asyncio.Future] = {}

    @property
    def running(self) -> bool:
        return self._member.running

    @property
    def channel(self) -> str | None:
        return self._member.channel

    @property
    def membership(self) -> dict:
        """How this process's stream membership stands (GroupMember.status)."""
        return self._member.status()

    @property
    def clients_scope(self) -> str:
        """"deployment" when this process is the only one serving (the in-memory layer), else "process"."""
        return "deployment" if isinstance(self._member.layer, InMemoryChannelLayer) else "process"

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
            epoch = envelope.get("epoch")
            if epoch != self.latest_epoch:
                self.ring.clear()  # another run of history: the old ticks do not resume into it
            frame = Frame(envelope["message"])
            if self.ring and frame.tick_number <= self.ring[-1].tick_number:
                self.ring.clear()  # the engine restarted behind what this process saw (after a kill -9)
            self.ring.append(frame)
            self.latest_tick = tick
            self.latest_epoch = epoch
            self.tick_rate = envelope.get("rate", self.tick_rate)
            self.paused = bool(envelope.get("paused", False))
            self.latest_received_at = self.state_heard_at = time.time()
            self._heard.set()
            self.broadcast(frame)
            if envelope.get("stimuli"):
                self._acknowledge(envelope["stimuli"], tick["tick_number"])
        elif kind == STREAM_EVENT:
            self.broadcast(Frame(envelope["message"]))
        elif kind == STREAM_STATUS:
            self.engine_status, self.engine_status_at = envelope.get("status"), time.time()
        elif kind == STREAM_CONTROL:
            self._control(envelope)

    def _control(self, envelope: dict) -> None:
        """Take the engine's control state (a command handled, or the pause's heartbeat); answer its sender."""
        state = envelope.get("state") or {}
        self.paused = bool(state.get("paused", self.paused))
        self.tick_rate = state.get("rate", self.tick_rate)
        self.state_heard_at = time.time()
        self._heard.set()
        if envelope.get("message"):
            self.broadcast(Frame(envelope["message"]))
        reply = envelope.get("reply")
        waiter = self._control_waiters.pop(reply.get("command"), None) if reply else None
        if waiter is not None and not waiter.done():
            waiter.set_result(reply)

    async def heard(self, *, timeout: float) -> bool:
        """Wait until this process has heard the engine (a tick, or while paused its control state), at most
        `timeout` seconds; whether it has. Just after a worker starts, the stream is ahead of the history."""
        if not self._heard.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._heard.wait()
        return self._heard.is_set()

    def engine_paused(self, *, within: float) -> bool:
        """The engine said it is paused, and said so lately (in a tick, a command, or the pause's heartbeat)."""
        heard = self.state_heard_at
        return self.paused and heard is not None and time.time() - heard <= within

    async def control_request(self, envelope: dict, *, timeout: float) -> dict | None:
        """Send a control command to the engine and wait for its answer on the stream (None: none in time).

        Raises what the channel layer raises if the command cannot be sent at all.
        """
        await self.start()  # the answer comes on the stream: this process must be listening first
        command = envelope["command"]
        waiter = self._control_waiters[command] = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(timeout):
                await self._member.layer.group_send(ENGINE_GROUP, envelope)
                return await waiter
        except TimeoutError:
            return None
        finally:
            self._control_waiters.pop(command, None)

    def broadcast(self, frame: Frame) -> None:
        """Offer one frame, encoded once per protocol, to every local client."""
        for client in list(self.clients.values()):
            client.offer(frame)

    def ring_ticks(self, first: int, last: int) -> list[Frame]:
        """The ring's tick frames first..last held contiguously up to `last` (maybe fewer, never gapped)."""
        found: list[Frame] = []
        for frame in reversed(self.ring):
            number = frame.tick_number
            if number > last:
                continue
            if number < first or (found and number != found[-1].tick_number - 1):
                break
            found.append(frame)
        found.reverse()
        return found

    def admits(self, address: str | None) -> bool:
        """Whether one more socket from `address` stays within the cap (an unknown address always does)."""
        cap = self.max_per_address
        return address is None or cap is None or self.per_address[address] < cap

    def register(self, client: Client) -> None:
        self.clients[client.id] = client
        if client.address is not None:
            self.per_address[client.address] += 1
        if len(self.clients) >= self._next_freeze:
            gc.freeze()
            self._next_freeze *= 2

    def unregister(self, client: Client) -> None:
        client.closed = True
        if self.clients.pop(client.id, None) is not None:
            if client.address is not None:
                self.per_address[client.address] -= 1
                if not self.per_address[client.address]:
                    del self.per_address[client.address]
            # the stimuli it still waits on will find no one: forget them (bounded by its stimulus limit)
            for key in [k for k, owner in self._stimulus_origin.items() if owner == client.id]:
                del self._stimulus_origin[key]

    def evict(self, client: Client, *, reason: str, notify: bool = True, code: int = CLOSE_SLOW_CLIENT) -> None:
        """Stop feeding a client and close its socket within a bound: with a close code if it can still
        hear, else (or if it does not answer the close) by aborting the TCP connection."""
        if client.closed:
            return
        self.unregister(client)
        self.evicted += 1
        logger.info("closing stream client %s: %s", client.id, reason)
        if notify:
            close = {"type": "websocket.close", "code": code, "reason": reason}
            asyncio.get_running_loop().create_task(close_bounded(client, close))
        elif client.abort is not None:
            client.abort()

    def remember_stimulus(self, ref: str, client: Client) -> None:
        # no cap that could evict another client's entry: each client's share is bounded by its
        # stimulus limit, and it goes when the client does
        self._stimulus_origin[ref] = client.id

    def _acknowledge(self, stimuli: list[dict], tick_number: int) -> None:
        """Tell the local clients that sent these stimuli which tick applied them, or that the engine
        rejected them (an answer: never dropped)."""
        for item in stimuli:
            client_id = self._stimulus_origin.pop(item.get("key") or "", None)
            client = self.clients.get(client_id) if client_id else None
            if client is None:
                continue
            if item.get("rejected"):  # the engine could not queue it: the sender hears, as it would an ack
                message = "the engine's queue for your stimuli is full; it was dropped"
                client.reply(Frame(error_message("rate_limited", message, ref=item.get("ref"))))
            else:
                client.reply(Frame(stimulus_applied_message(ref=item.get("ref"), tick_number=tick_number)))


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, StreamHub] = weakref.WeakKeyDictionary()


def stream_hub() -> StreamHub:
    """This process's hub for the running event loop (one per loop, so tests with fresh loops stay apart)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        config = settings.DAWN_CONFIG
        stream = config["stream"]
        hub = _hubs[loop] = StreamHub(
            slow_after=stream["slow_client_ticks"], tick_rate=float(config["consciousness"]["tick_rate"]),
            max_per_address=stream["max_connections_per_address"],
        )
    return hub


def stream_hub_latest() -> StreamHub | None:
    """The hub of any loop in this process, for sync code (HTTP views run in threads)."""
    for hub in list(_hubs.values()):
        if hub.running:
            return hub
    return None
