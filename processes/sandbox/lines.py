"""A script's stderr as progress lines: truncated lines, a capped total, the last lines kept for the reason."""
from __future__ import annotations

import collections
import logging
from typing import Any, Callable

from processes.sandbox.pipes import maybe_await

logger = logging.getLogger(__name__)

LINE_MAX_CHARS = 2000
TAIL_LINES = 20


class StderrLines:
    """Split stderr into lines for on_line: truncated lines, a capped total, the last lines kept."""

    def __init__(self, on_line: Callable[[str], Any] | None, max_total: int):
        self.on_line = on_line
        self.max_total = max_total
        self.total = 0
        self.partial = bytearray()
        self.skipping = False  # inside an over-long line
        self.capped = False
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)

    async def feed(self, data: bytes) -> None:
        """Take a chunk of stderr; each complete line goes to on_line."""
        start = 0
        while start < len(data):
            end = data.find(b"\n", start)
            piece = data[start:] if end < 0 else data[start:end]
            if not self.skipping:
                room = LINE_MAX_CHARS * 4 - len(self.partial)
                self.partial += piece[:room]
                self.skipping = len(piece) > room
            if end < 0:
                return
            await self._line()
            start = end + 1

    async def finish(self) -> None:
        """At EOF: a last line without a newline is a line too."""
        if self.partial or self.skipping:
            await self._line()

    async def _line(self) -> None:
        text = bytes(self.partial).decode("utf-8", errors="replace").rstrip("\r")[:LINE_MAX_CHARS]
        self.partial.clear()
        self.skipping = False
        self.tail.append(text)
        if self.on_line is None or self.capped:
            return
        self.total += len(text) + 1
        if self.total > self.max_total:
            self.capped = True
            text = f"[further output dropped: stderr exceeded {self.max_total} bytes]"
        try:
            await maybe_await(self.on_line(text))
        except Exception:  # noqa: BLE001 - a broken listener must not break the run
            logger.exception("on_line callback failed; further lines are not delivered")
            self.on_line = None
