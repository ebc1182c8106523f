"""The /ws endpoint: relays the stream from the process hub, answers requests, passes stimuli and control on.

The protocol (messages, error codes, close codes) is the README's "/ws protocol" section; the inbound
models are in consciousness.inbound, the outbound messages in consciousness.frames.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any
from urllib.parse import parse_qs

from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer

from consciousness import access, control, frames, inbound, replay
from consciousness.groups import ENGINE_GROUP, ENGINE_STIMULUS
from consciousness.hub import stream_hub
from consciousness.inbound import ClientError
from consciousness.sockets import TRANSPORT_EXTENSION, Client

logger = logging.getLogger(__name__)

STIMULUS_SEND_TIMEOUT_S = 2.0
STIMULUS_PERMISSION = "consciousness.send_stimulus"
CONTROL_LIMIT = (2.0, 10.0)  # control commands a second per connection, and at once


class EngineStreamConsumer(AsyncWebsocketConsumer):
    # Ticks reach sockets through the process's StreamHub, so a socket needs no channel of its own:
    # without an alias Channels does not register one per connection.
    channel_layer_alias = None

    async def connect(self) -> None:
        self.hub = stream_hub()
        await self.hub.start()
        msgpack = frames.SUBPROTOCOL_MSGPACK in self.scope.get("subprotocols", [])
        await self.accept(subprotocol=frames.SUBPROTOCOL_MSGPACK if msgpack else None)
        protocol = frames.PROTOCOL_MSGPACK if msgpack else frames.PROTOCOL_JSON
        transport = self.scope.get("extensions", {}).get(TRANSPORT_EXTENSION, {})
        address = (self.scope.get("client") or (None,))[0]
        self.client = Client(
            self.base_send, self.hub, protocol=protocol, abort=transport.get("abort"), address=address
        )
        if not self.hub.admits(address):  # checked here and registered below with no await between: no race
            self.client.closed = True  # what it sends meanwhile is not served
            reason = f"more than {self.hub.max_per_address} connections from {address}"
            await self.close(code=frames.CLOSE_TRY_AGAIN_LATER, reason=reason)
            return
        self.failures = 0
        self.stimulus_limit = access.StimulusLimit()
        self.control_limit = access.TokenBucket(*CONTROL_LIMIT)
        self.control_tasks: set[asyncio.Task] = set()
        # the snapshot goes first, then the client joins the fan-out
        tick = self.hub.latest_tick
        self.client.after = tick["tick_number"] if tick else -1
        self.answer(
            frames.connection_message(
                client_id=self.client.id,
                epoch=self.hub.latest_epoch,
                protocol=protocol,
                tick_rate=self.hub.tick_rate,
                clients=len(self.hub.clients) + 1,
                clients_scope=self.hub.clients_scope,
                topics=sorted(self.client.topics),
                tick=tick,
                paused=self.hub.paused,
            )
        )
        self.hub.register(self.client)
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        if "epoch" in query or "since" in query:
            # reconnect-on-connect: the same as a resume message
            since = query.get("since", [""])[-1]
            epoch = query.get("epoch", [""])[-1]
            request = {"type": "resume", "epoch": epoch, "since": int(since) if since.isdigit() else since}
            await self.handle(request)

    async def disconnect(self, code: int) -> None:
        client = getattr(self, "client", None)
        if client is not None:
            self.hub.unregister(client)
        for task in getattr(self, "control_tasks", ()):
            task.cancel()  # the command still applies; only its answer has no one left to hear it

    def answer(self, message: dict) -> None:
        self.client.reply(frames.Frame(message))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.client.closed:
            return  # evicted, its socket closing: what it still sends is not served (its stimuli neither)
        try:
            message = inbound.decode(text_data, bytes_data)
        except ClientError as exc:
            self.answer(frames.error_message(exc.code, str(exc)))
            return
        await self.handle(message)

    async def handle(self, message: Any) -> None:
        """Validate one decoded message and serve it; every failure ends in a coded error frame."""
        ref = inbound.ref_of(message)
        try:
            request = inbound.parse(message)
            await self._handlers[request.type](self, request)
        except ClientError as exc:
            self.answer(frames.error_message(exc.code, str(exc), ref=ref))
        except Exception:
            self.failures += 1
            if self.failures == 1:  # once per connection: a client repeating the message cannot flood the log
                kind = message.get("type") if isinstance(message, dict) else None
                logger.exception("/ws client %s: failed to serve a %r message", self.client.id, kind)
            self.answer(frames.error_message("internal_error", "the server failed on this message", ref=ref))

    async def on_ping(self, request: inbound.Ping) -> None:
        self.answer(frames.pong_message(request.data, ref=request.ref))

    async def on_heartbeat(self, request: inbound.Heartbeat) -> None:
        tick = self.hub.latest_tick
        number = tick["tick_number"] if tick else None
        self.answer(frames.heartbeat_message(number, epoch=self.hub.latest_epoch, ref=request.ref))

    async def on_get_state(self, request: inbound.GetState) -> None:
        self.answer(frames.state_message(self.hub.latest_tick, ref=request.ref))

    async def on_stimulus(self, request: inbound.StimulusRequest) -> None:
        refusal = await access.ws_write_refusal(self.scope, STIMULUS_PERMISSION)
        if refusal is not None:
            raise ClientError(*refusal)
        verdict = self.stimulus_limit.check()
        if verdict == "abuse":
            self.hub.evict(self.client, reason="stimulus flood", code=frames.CLOSE_PROTOCOL_ABUSE)
            return
        if verdict != "ok":
            if verdict == "answer":
                rate = access.StimulusLimit.RATE
                raise ClientError("rate_limited", f"more than {rate:g} stimuli a second; the excess is dropped")
            return  # refused, and already told so this second
        stimulus = request.stimulus()
        key = uuid.uuid4().hex
        self.hub.remember_stimulus(key, self.client)
        envelope = {"type": ENGINE_STIMULUS, "kind": stimulus.kind, "intensity": stimulus.intensity}
        envelope.update(ref=request.ref, key=key, client=self.client.id)
        try:
            await _group_send(get_channel_layer(), ENGINE_GROUP, envelope)
        except Exception as exc:  # Redis down or just back: the client hears it, the socket lives
            reason = f"the engine cannot be reached now ({type(exc).__name__}): try again"
            raise ClientError("unavailable", reason) from None

    async def on_control(self, request: inbound.ControlRequest) -> None:
        refusal = await access.ws_write_refusal(self.scope, control.CONTROL_PERMISSION)
        if refusal is not None:
            raise ClientError(*refusal)
        if not self.control_limit.take():
            raise ClientError("rate_limited", f"more than {CONTROL_LIMIT[0]:g} control commands a second")
        user_id, by = control.requester(self.scope.get("user"), (self.scope.get("client") or (None,))[0])
        # the engine answers within ACK_TIMEOUT_S: wait aside, so the socket's other requests go on meanwhile
        task = asyncio.get_running_loop().create_task(self._control(request, user_id=user_id, by=by))
        self.control_tasks.add(task)
        task.add_done_callback(self.control_tasks.discard)

    async def _control(self, request: inbound.ControlRequest, *, user_id: int | None, by: str) -> None:
        ref = request.ref
        try:
            answer = await control.control_request(request.command(), user_id=user_id, by=by)
        except Exception as exc:  # Redis down or just back: the client hears it, the socket lives
            reason = f"the engine cannot be reached now ({type(exc).__name__}): try again"
            self.answer(frames.error_message("unavailable", reason, ref=ref))
            return
        if answer.outcome == control.APPLIED:
            self.answer(frames.control_applied_message(answer.data, ref=ref))
        elif answer.outcome == control.REFUSED:
            self.answer(frames.error_message("conflict", answer.detail, ref=ref))
        else:
            self.answer(frames.error_message("unavailable", answer.detail, ref=ref))

    async def on_resume(self, request: inbound.Resume) -> None:
        client = self.client
        client.hold()  # live ticks wait aside until the missed ones are out: no gap, no duplicate
        try:
            resumed = await replay.resume(self.hub, epoch=request.epoch, since=request.since, ref=request.ref)
            self.answer(resumed.answer)
            for frame in resumed.frames:
                client.reply(frame)
            if resumed.last is not None:
                client.after = resumed.last
        finally:
            client.release()

    async def on_get_history(self, request: inbound.GetHistory) -> None:
        answer = await replay.history(
            self.hub, count=request.count, since=request.since, until=request.until, ref=request.ref
        )
        self.answer(answer)

    async def on_subscribe(self, request: inbound.Subscribe) -> None:
        if request.type == "subscribe":
            self.client.topics |= set(request.topics)
        else:
            self.client.topics -= set(request.topics)
        self.answer(frames.subscribed_message(sorted(self.client.topics), ref=request.ref))

    async def on_throttle(self, request: inbound.Throttle) -> None:
        self.client.every = request.every
        self.answer(frames.throttled_message(request.every, ref=request.ref))

    _handlers = {
        "ping": on_ping,
        "heartbeat": on_heartbeat,
        "get_state": on_get_state,
        "stimulus": on_stimulus,
        "control": on_control,
        "resume": on_resume,
        "get_history": on_get_history,
        "subscribe": on_subscribe,
        "unsubscribe": on_subscribe,
        "throttle": on_throttle,
    }


async def _group_send(layer: Any, group: str, message: dict) -> None:
    # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
    async with asyncio.timeout(STIMULUS_SEND_TIMEOUT_S):
        try:
            await layer.group_send(group, message)
        except Exception:
            # a pooled connection that Redis dropped when it restarted fails once: try again on a fresh one
            await layer.group_send(group, message)
