"""The /ws endpoint: relays the stream from the process hub and passes client messages to the engine."""

from __future__ import annotations

import json
import logging
import math
import uuid

from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer

from consciousness import frames
from consciousness.engine import Stimulus
from consciousness.groups import ENGINE_GROUP, ENGINE_STIMULUS
from consciousness.hub import Client, stream_hub

logger = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 16_384


class ProtocolError(ValueError):
    """A client message that cannot be served; answered with an error frame, the socket stays open."""


class EngineStreamConsumer(AsyncWebsocketConsumer):
    # Ticks reach sockets through the process's StreamHub, so a socket needs no channel of its own:
    # without an alias Channels does not register one per connection.
    channel_layer_alias = None

    async def connect(self) -> None:
        self.hub = stream_hub()
        await self.hub.start()
        await self.accept()
        self.client = Client(self.base_send, self.hub)
        # the snapshot goes first, then the client joins the fan-out
        await self.send_message(
            frames.connection_message(
                client_id=self.client.id,
                epoch=self.hub.latest_epoch,
                clients=len(self.hub.clients) + 1,
                tick=self.hub.latest_tick,
            )
        )
        self.hub.register(self.client)

    async def disconnect(self, code: int) -> None:
        client = getattr(self, "client", None)
        if client is not None:
            self.hub.unregister(client)

    async def send_message(self, message: dict) -> None:
        await self.base_send(frames.Frame(message).asgi)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            message = self._parse(text_data, bytes_data)
            handler = self._handlers.get(message["type"])
            if handler is None:
                raise ProtocolError(f"unknown message type {message['type']!r}; known: {', '.join(sorted(self._handlers))}")
            await handler(self, message)
        except ProtocolError as exc:
            await self.send_message(frames.error_message(str(exc)))

    @staticmethod
    def _parse(text_data: str | None, bytes_data: bytes | None) -> dict:
        if text_data is None:
            raise ProtocolError("send JSON text frames, not binary")
        if len(text_data) > MAX_MESSAGE_CHARS:
            raise ProtocolError(f"message longer than {MAX_MESSAGE_CHARS} characters")
        try:
            message = json.loads(text_data)
        except ValueError as exc:
            raise ProtocolError(f"not valid JSON: {exc}") from None
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            raise ProtocolError('a message must be a JSON object with a string "type"')
        return message

    async def on_ping(self, message: dict) -> None:
        await self.send_message(frames.pong_message(message.get("data")))

    async def on_heartbeat(self, message: dict) -> None:
        tick = self.hub.latest_tick
        await self.send_message(frames.heartbeat_message(tick["tick_number"] if tick else None))

    async def on_get_state(self, message: dict) -> None:
        await self.send_message(frames.state_message(self.hub.latest_tick))

    async def on_stimulus(self, message: dict) -> None:
        ref = message.get("ref")
        if ref is not None and not (isinstance(ref, (str, int)) and not isinstance(ref, bool) and len(str(ref)) <= 100):
            raise ProtocolError("ref must be a string or an integer of at most 100 characters")
        fields = {k: v for k, v in message.items() if k not in ("type", "ref")}
        intensity = fields.get("intensity")
        if isinstance(intensity, float) and not math.isfinite(intensity):
            raise ProtocolError("intensity must be a finite number")
        try:
            stimulus = Stimulus.from_mapping(fields)
        except ValueError as exc:
            raise ProtocolError(f"invalid stimulus: {exc}") from None
        layer = get_channel_layer()
        key = uuid.uuid4().hex
        self.hub.remember_stimulus(key, self.client)
        await layer.group_send(
            ENGINE_GROUP,
            {"type": ENGINE_STIMULUS, "kind": stimulus.kind, "intensity": stimulus.intensity, "ref": ref, "key": key},
        )

    _handlers = {"ping": on_ping, "heartbeat": on_heartbeat, "get_state": on_get_state, "stimulus": on_stimulus}
