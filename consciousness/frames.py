"""The outbound stream messages, defined once, and their frames: each built once and encoded once.

Every message a client receives on /ws is made by one of the builders below; a Frame wraps one
message for all the sockets it goes to, and encodes it at most once (per protocol), however many
sockets receive it.
"""

from __future__ import annotations

import json
import time
from typing import Any

CLOSE_SLOW_CLIENT = 4001  # the client fell behind: reconnect (and resume)
CLOSE_SERVER_RESTART = 1012  # the server is restarting: reconnect after a short wait


def encode_json(message: dict) -> str:
    """Compact JSON, and never NaN/Infinity (which no browser's JSON.parse accepts)."""
    return json.dumps(message, separators=(",", ":"), allow_nan=False)


class Frame:
    """One outbound message and its ASGI send message, encoded on first use and then shared."""

    __slots__ = ("message", "_text")

    def __init__(self, message: dict) -> None:
        self.message = message
        self._text: dict | None = None

    @property
    def asgi(self) -> dict:
        """The websocket.send message carrying this frame as JSON text (encoded once)."""
        if self._text is None:
            self._text = {"type": "websocket.send", "text": encode_json(self.message)}
        return self._text


def tick_message(tick: dict) -> dict:
    return {"type": "tick", "data": tick}


def connection_message(*, client_id: str, epoch: str | None, clients: int, tick: dict | None) -> dict:
    return {"type": "connection", "data": {"client_id": client_id, "epoch": epoch, "clients": clients, "tick": tick}}


def process_message(run: dict) -> dict:
    """A run's status changed; `run` as GET /api/runs/{id}/ shows it."""
    return {"type": "process", "data": run}


def process_output_message(*, process_id: str, line: str) -> dict:
    return {"type": "process_output", "data": {"process_id": process_id, "line": line}}


def stimulus_applied_message(*, ref: Any, tick_number: int) -> dict:
    return {"type": "stimulus_applied", "data": {"ref": ref, "tick_number": tick_number}}


def pong_message(echo: Any) -> dict:
    return {"type": "pong", "data": {"time": time.time(), "echo": echo}}


def heartbeat_message(tick_number: int | None) -> dict:
    return {"type": "heartbeat_response", "data": {"time": time.time(), "tick_number": tick_number}}


def state_message(tick: dict | None) -> dict:
    return {"type": "state", "data": tick}


def error_message(message: str) -> dict:
    return {"type": "error", "error": message}
