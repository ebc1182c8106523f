"""The embedded ASGI server: uvicorn inside runtick's own event loop."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import uvicorn

from dawn_site.asgi import application


class EmbeddedServer(uvicorn.Server):
    """uvicorn without its signal handling: runtick owns SIGTERM/SIGINT, since it must save before exiting."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def embedded_server() -> EmbeddedServer:
    """A uvicorn server for dawn_site's ASGI application, tuned for many small WebSocket frames."""
    config = uvicorn.Config(
        application,
        lifespan="off",  # runtick starts the stream hub itself
        http="httptools",
        ws="websockets-sansio",
        # compressing every tick for every client costs more CPU than the small frames save in bandwidth
        ws_per_message_deflate=False,
        log_config=None,  # Django's LOGGING already configured the handlers
        access_log=False,
        timeout_graceful_shutdown=3,
        backlog=2048,
    )
    return EmbeddedServer(config)
