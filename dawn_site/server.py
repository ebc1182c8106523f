"""The embedded ASGI server: uvicorn inside runtick's own event loop, and the WebSocket protocol both it and
the uvicorn workers use (`uvicorn --ws dawn_site.server:DawnWebSocketProtocol`)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Iterator

import uvicorn
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from consciousness.sockets import TRANSPORT_EXTENSION
from dawn_site.asgi import application

# What one WebSocket may hold on its way out. The kernel doubles SO_SNDBUF for its own bookkeeping, so a socket
# holds at most 128 KiB there (instead of autotuning up to tcp_wmem's 4 MiB) and 64 KiB + one frame in the
# transport; beyond that a send waits, and the hub skips the client to the newest tick, then evicts it.
SEND_BUFFER_BYTES = 64 * 1024
WRITE_HIGH_BYTES = 64 * 1024
WRITE_LOW_BYTES = 16 * 1024
_LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() discards what is queued and sends RST


class DawnWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol with bounded send buffers, and an abort for the stream hub.

    The ASGI scope carries `extensions["dawn.transport"] = {"abort": ...}`: the hub calls it when an evicted
    client's close frame cannot be written or is not answered, so the connection and its buffers go at once.
    """

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
        self.transport.set_write_buffer_limits(high=WRITE_HIGH_BYTES, low=WRITE_LOW_BYTES)

    async def run_asgi(self) -> None:
        self.scope["extensions"][TRANSPORT_EXTENSION] = {"abort": self.abort}
        await super().run_asgi()

    def abort(self) -> None:
        """Reset the TCP connection now, whatever is still buffered (nothing, once it is already lost)."""
        if self.disconnected:
            return
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        self.transport.abort()


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
        ws=DawnWebSocketProtocol,
        # compressing every tick for every client costs more CPU than the small frames save in bandwidth
        ws_per_message_deflate=False,
        log_config=None,  # Django's LOGGING already configured the handlers
        access_log=False,
        timeout_graceful_shutdown=3,
        backlog=2048,
    )
    return EmbeddedServer(config)
