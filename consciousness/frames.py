"""The outbound stream messages, defined once, and their frames: each built once and encoded once per protocol.

Every message a client receives on /ws is made by one of the builders below; a Frame wraps one
message for all the sockets it goes to, and encodes it at most once per protocol in use (JSON text
or msgpack binary), however many sockets receive it. Answers to a request carry its `ref` in `data`.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

import msgpack

PROTOCOL_JSON = "json"
PROTOCOL_MSGPACK = "msgpack"
SUBPROTOCOL_MSGPACK = "dawn.msgpack"  # the WebSocket subprotocol a client offers to get binary frames

# close codes: what a client should do for each is in the README's table
CLOSE_SERVER_RESTART = 1012  # the server is restarting: reconnect after a short wait, and resume
CLOSE_TRY_AGAIN_LATER = 1013  # too many connections from the client's address: reconnect with backoff
CLOSE_SLOW_CLIENT = 4001  # the client fell behind the stream: reconnect and resume (or throttle)
CLOSE_UNAUTHORISED = 4003  # the handshake lacks the authority asked for: do not retry as is
CLOSE_PROTOCOL_ABUSE = 4008  # requests sent without reading their answers: reconnect only after a long wait

TOPICS = ("ticks", "processes", "process_output", "control")

# error codes: stable, each documented in the README
ERROR_CODES = {
    "malformed": "the frame is not valid JSON (text) or msgpack (binary)",
    "too_large": "the frame is longer than the size limit",
    "too_deep": "the message nests deeper than the depth limit",
    "non_finite": "a number is NaN or infinite",
    "unencodable": "a value has no JSON form (bytes, ext types, non-string keys, huge integers, lone surrogates)",
    "invalid_message": "the message is not an object with a string `type`",
    "unknown_type": "no such message type",
    "invalid_field": "a field is missing, unknown or out of range (the message names it)",
    "unavailable": "the engine or the history cannot be reached now: try again",
    "unauthorised": "the request needs an authenticated user",
    "forbidden": "the user may not do this",
    "rate_limited": "too many requests: slow down",
    "conflict": "the engine's state does not allow this now (a step while it is running)",
    "internal_error": "the server failed on this message (logged); the socket stays open",
}

_TOPIC_OF = {"tick": "ticks", "process": "processes", "process_output": "process_output"}


def encode_json(message: dict) -> str:
    """Compact JSON, and never NaN/Infinity (which no browser's JSON.parse accepts)."""
    return json.dumps(message, separators=(",", ":"), allow_nan=False)


def encode_msgpack(message: dict) -> bytes:
    """msgpack with strings as str and floats as float64, the same structure as the JSON."""
    return msgpack.packb(message, use_bin_type=True)


class Frame:
    """One outbound message and its ASGI send messages, encoded on first use per protocol and then shared."""

    __slots__ = ("message", "topic", "tick_number", "_json", "_msgpack")

    def __init__(self, message: dict) -> None:
        self.message = message
        self.topic = _TOPIC_OF.get(message.get("type"), "control")
        data = message.get("data")
        self.tick_number: int | None = data.get("tick_number") if self.topic == "ticks" and data else None
        self._json: dict | None = None
        self._msgpack: dict | None = None

    @property
    def asgi(self) -> dict:
        """The websocket.send message carrying this frame as JSON text (encoded once)."""
        if self._json is None:
            self._json = {"type": "websocket.send", "text": encode_json(self.message)}
        return self._json

    def asgi_for(self, protocol: str) -> dict:
        """The websocket.send message for `protocol` (json or msgpack), encoded once per protocol."""
        if protocol != PROTOCOL_MSGPACK:
            return self.asgi
        if self._msgpack is None:
            self._msgpack = {"type": "websocket.send", "bytes": encode_msgpack(self.message)}
        return self._msgpack


def tick_message(tick: dict) -> dict:
    return {"type": "tick", "data": tick}


def connection_message(
    *,
    client_id: str,
    epoch: str | None,
    protocol: str,
    tick_rate: float,
    clients: int,
    clients_scope: str,
    topics: list[str],
    tick: dict | None,
    paused: bool,
) -> dict:
    """The first message on every socket; `tick` is the latest tick, or None before the first."""
    return {
        "type": "connection",
        "data": {
            "client_id": client_id,
            "epoch": epoch,
            "protocol": protocol,
            "tick_rate": rate_value(tick_rate),
            "paused": paused,
            "clients": clients,
            "clients_scope": clients_scope,
            "topics": topics,
            "tick": tick,
        },
    }


def run_visualization_url(run_id: int) -> str:
    return f"/api/runs/{run_id}/visualization.png"


def process_message(run: dict) -> dict:
    """A run's status changed; `run` as GET /api/runs/{id}/ shows it, less its picture (fetched by URL)."""
    output = run.get("output")
    picture = isinstance(output, dict) and bool(output.get("visualization"))
    if picture:
        output = {k: v for k, v in output.items() if k != "visualization"}
    data = {**run, "output": output, "visualization_url": run_visualization_url(run["id"]) if picture else None}
    return {"type": "process", "data": data}


def process_output_message(*, process_id: str, line: str) -> dict:
    return {"type": "process_output", "data": {"process_id": process_id, "line": line}}


def rate_value(rate: float) -> float | None:
    """A tick rate as messages carry it: None for unthrottled (math.inf has no JSON form)."""
    return rate if math.isfinite(rate) else None


def control_message(
    *, command: str, action: str, ticks: int | None, rate: float | None, tick_number: int, paused: bool,
    tick_rate: float, by: str, epoch: str,
) -> dict:
    """The engine applied a control command after tick `tick_number`; `paused`, `tick_rate`: its state now."""
    data = {"command": command, "action": action, "ticks": ticks, "rate": rate, "tick_number": tick_number}
    data.update(paused=paused, tick_rate=rate_value(tick_rate), by=by, epoch=epoch)
    return {"type": "control", "data": data}


def control_applied_message(control: dict, *, ref: Any) -> dict:
    """Your control command was applied: the `control` message's data, and your ref."""
    return {"type": "control_applied", "data": {**control, "ref": ref}}


def stimulus_applied_message(*, ref: Any, tick_number: int) -> dict:
    return {"type": "stimulus_applied", "data": {"ref": ref, "tick_number": tick_number}}


def pong_message(echo: Any, *, ref: Any = None) -> dict:
    return {"type": "pong", "data": {"time": time.time(), "echo": echo, "ref": ref}}


def heartbeat_message(tick_number: int | None, *, epoch: str | None, ref: Any = None) -> dict:
    data = {"time": time.time(), "tick_number": tick_number, "epoch": epoch, "ref": ref}
    return {"type": "heartbeat_response", "data": data}


def state_message(tick: dict | None, *, ref: Any = None) -> dict:
    return {"type": "state", "data": {"tick": tick, "ref": ref}}


def resumed_message(
    *, epoch: str, since: int, first: int | None, last: int | None, count: int, truncated: bool, ref: Any
) -> dict:
    """Resume accepted: `count` ticks first..last follow, then the live stream; `truncated` if far behind."""
    data = {"epoch": epoch, "since": since, "from": first, "until": last, "count": count, "truncated": truncated}
    data["ref"] = ref
    return {"type": "resumed", "data": data}


def resume_failed_message(*, reason: str, message: str, epoch: str | None, tick: dict | None, ref: Any) -> dict:
    """Resume refused (reason `epoch`, `pruned` or `unavailable`), with a fresh snapshot: the latest tick."""
    data = {"reason": reason, "message": message, "epoch": epoch, "tick": tick, "ref": ref}
    return {"type": "resume_failed", "data": data}


def history_message(ticks: list[dict], *, truncated: bool, ref: Any) -> dict:
    return {"type": "history", "data": {"ticks": ticks, "truncated": truncated, "ref": ref}}


def subscribed_message(topics: list[str], *, ref: Any) -> dict:
    return {"type": "subscribed", "data": {"topics": topics, "ref": ref}}


def throttled_message(every: int, *, ref: Any) -> dict:
    return {"type": "throttled", "data": {"every": every, "ref": ref}}


def error_message(code: str, message: str, *, ref: Any = None) -> dict:
    """A coded error; `code` is one of ERROR_CODES."""
    if code not in ERROR_CODES:
        raise ValueError(f"unknown error code {code!r}")
    return {"type": "error", "data": {"code": code, "message": message, "ref": ref}}
