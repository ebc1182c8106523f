"""Logging pieces the settings' LOGGING names: per-connection lines demoted to DEBUG, deliberate 503s to
WARNING (and a failing /health/ poll to nothing: the health report logs its own changes)."""

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


class DeliberateUnavailable(logging.Filter):
    """Django logs every 5xx answer at ERROR; a 503 is DAWN's deliberate answer while a component is down
    (the database locked, the engine not answering), said once by the component itself: WARNING here.

    A failing /health/ answers 503 to every poll: those go unlogged, and the report logs each change of
    the failing components instead (consciousness.health). Installed on django.request.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", None) != 503:
            return True
        match = getattr(getattr(record, "request", None), "resolver_match", None)
        if match is not None and match.url_name == "health":
            return False
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True
