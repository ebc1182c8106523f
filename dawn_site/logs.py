"""Logging pieces the settings' LOGGING names: per-connection lines demoted to DEBUG."""

from __future__ import annotations

import logging


class ConnectionLinesAtDebug(logging.Filter):
    """Socket-level lines (uvicorn's "WebSocket /ws [accepted]", websockets' "connection open/closed") are DEBUG.

    They come from the servers at INFO, one or more per connection: at a thousand clients they would
    drown every other event. Installed on the handlers, so it sees records of every logger.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or not self._per_connection(record):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)

    @staticmethod
    def _per_connection(record: logging.LogRecord) -> bool:
        if record.name.startswith("websockets"):
            return True
        if record.name != "uvicorn.error" or not isinstance(record.msg, str):
            return False
        return '"WebSocket ' in record.msg or record.msg in ("connection open", "connection closed")
