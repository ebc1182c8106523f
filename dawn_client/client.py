"""DawnClient: one DAWN stream, reconnected and resumed, so the caller sees every tick_number once, in order.

Standalone: it needs only `websockets` and `msgpack`, never the server's code, and runs in a notebook's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import msgpack
import websockets

SUBPROTOCOL_MSGPACK = "dawn.msgpack"
CLOSE_UNAUTHORISED = 4003  # retrying as is cannot help
CLOSE_PROTOCOL_ABUSE = 4008  # wait long before coming back
RESTART_CODES = {1001, 1006, 1011, 1012, 1013, 4001}


class DawnClientError(RuntimeError):
    """The server refused the client in a way a reconnect cannot fix (e.g. unauthorised)."""


@dataclass
class Stats:
    connects: int = 0
    reconnects: int = 0
    resumes: int = 0
    resume_failures: int = 0
    replayed: int = 0
    latency_s: float | None = None  # the last tick's arrival minus its timestamp (clock offset included)
    closes: list[int] = field(default_factory=list)


class DawnClient:
    """Connect to ws://HOST:PORT/ws; `ticks()` yields each tick once, resuming across reconnects and restarts."""

    def __init__(
        self,
        url: str,
        *,
        binary: bool = True,
        origin: str | None = None,
        backoff_base: float = 0.25,
        backoff_cap: float = 10.0,
        max_attempts: int | None = None,
    ) -> None:
        self.url = url
        self.binary = binary
        self.origin = origin
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_attempts = max_attempts
        self.epoch: str | None = None
        self.last: int | None = None  # the newest tick_number handed to the caller
        self.stats = Stats()
        self._ws: Any = None

    def _url(self) -> str:
        if self.epoch is None or self.last is None:
            return self.url
        parts = urlsplit(self.url)
        query = "&".join(q for q in (parts.query, urlencode({"epoch": self.epoch, "since": self.last})) if q)
        return urlunsplit(parts._replace(query=query))

    def _decode(self, raw: str | bytes) -> dict:
        return msgpack.unpackb(raw, raw=False) if isinstance(raw, bytes) else json.loads(raw)

    async def send(self, message: dict) -> None:
        """Send a request on the current connection (JSON text, or msgpack on a binary connection)."""
        if self._ws is None:
            raise DawnClientError("not connected")
        await self._ws.send(msgpack.packb(message) if self.binary else json.dumps(message))

    def _delay(self, attempt: int, code: int | None) -> float:
        if code == CLOSE_PROTOCOL_ABUSE:
            return self.backoff_cap
        # exponential backoff with full jitter: clients dropped together do not come back together
        return random.uniform(0, min(self.backoff_cap, self.backoff_base * 2**attempt))

    async def messages(self) -> AsyncIterator[dict]:
        """Every message of the stream, across reconnects; ticks already seen are left out."""
        attempt = 0
        while True:
            code = None
            try:
                async with websockets.connect(
                    self._url(),
                    subprotocols=[SUBPROTOCOL_MSGPACK] if self.binary else None,
                    origin=self.origin,
                    max_queue=None,
                    open_timeout=10,
                ) as ws:
                    self._ws = ws
                    self.stats.connects += 1
                    if self.stats.connects > 1:
                        self.stats.reconnects += 1
                    attempt = 0
                    async for raw in ws:
                        message = self._decode(raw)
                        for out in self._absorb(message):
                            yield out
                        if self.epoch is None and message["type"] == "tick":
                            await self.send({"type": "heartbeat"})  # learn the epoch, to resume later
            except websockets.ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd else None
            except (OSError, asyncio.TimeoutError, websockets.InvalidHandshake):
                code = None
            finally:
                self._ws = None
            self.stats.closes.append(code or 1006)
            if code == CLOSE_UNAUTHORISED:
                raise DawnClientError("the server refused this client as unauthorised (close 4003)")
            if self.max_attempts is not None and attempt >= self.max_attempts:
                raise DawnClientError(f"gave up after {attempt} attempts to reconnect to {self.url}")
            await asyncio.sleep(self._delay(attempt, code))
            attempt += 1

    def _absorb(self, message: dict) -> list[dict]:
        """Update epoch and position from one message; the messages to hand on (duplicates dropped)."""
        kind, data = message.get("type"), message.get("data") or {}
        if kind == "connection":
            self.epoch = data.get("epoch") or self.epoch
            if self.last is None and data.get("tick"):
                return [message, {"type": "tick", "data": data["tick"]}] if self._take(data["tick"]) else [message]
        elif kind in ("heartbeat_response", "resumed"):
            self.epoch = data.get("epoch") or self.epoch
            if kind == "resumed":
                self.stats.resumes += 1
                self.stats.replayed += data.get("count") or 0
        elif kind == "resume_failed":
            # another run of history (reset) or a pruned range: start again from the snapshot
            self.stats.resume_failures += 1
            self.epoch, self.last = data.get("epoch"), None
            tick = data.get("tick")
            if tick and self._take(tick):
                return [message, {"type": "tick", "data": tick}]
        elif kind == "tick":
            return [message] if self._take(data) else []
        return [message]

    def _take(self, tick: dict) -> bool:
        number = tick["tick_number"]
        if self.last is not None and number <= self.last:
            return False
        self.last = number
        self.stats.latency_s = time.time() - tick["timestamp"]
        return True

    async def ticks(self) -> AsyncIterator[dict]:
        """Each tick once, oldest first, resumed after every reconnect (`async for tick in client.ticks()`).

        A caller that stops early should close it (`async with contextlib.aclosing(client.ticks()) as ticks`),
        so that the socket is closed in its own task rather than by the loop's shutdown."""
        # closed here, not left to the loop's shutdown: that closes every suspended generator at once,
        # websockets' own among them while this one's socket is still closing (RuntimeError: aclose() ...)
        async with contextlib.aclosing(self.messages()) as messages:
            async for message in messages:
                if message["type"] == "tick":
                    yield message["data"]
