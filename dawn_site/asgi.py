"""ASGI entry point, served by uvicorn (the default) or Daphne: HTTP through Django, /ws through Channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dawn_site.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs the apps loaded)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import re_path  # noqa: E402

from consciousness.access import OriginPolicy, TokenAuthMiddleware  # noqa: E402
from processes.sandbox.confine import serving_process_harden  # noqa: E402

# a worker's environment holds the secret key and the database URL: closed to other processes
serving_process_harden()

from consciousness import metrics  # noqa: E402
from consciousness.hub import stream_hub, stream_hub_latest  # noqa: E402
from consciousness.routing import websocket_urlpatterns  # noqa: E402

metrics.STREAM.hub = stream_hub_latest


async def _lifespan(scope, receive, send):
    # uvicorn announces start-up and shutdown; Daphne never does, which is fine: the hub also starts lazily
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                await stream_hub().start()
            except Exception as exc:
                await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await stream_hub().stop()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _http(scope, receive, send):
    # /api/state/ and /health/ read the hub's latest tick, so every serving process listens to the stream
    hub = stream_hub()
    if not hub.running:
        try:
            await hub.start()
        except Exception:
            pass  # the views fall back to the database
    await django_asgi_app(scope, receive, send)


async def _refuse_websocket(scope, receive, send):
    """Any WebSocket path but /ws: the handshake is refused (HTTP 403), without a traceback."""
    message = await receive()
    if message["type"] == "websocket.connect":
        await send({"type": "websocket.close", "code": 1008})


application = ProtocolTypeRouter(
    {
        "http": _http,
        # a foreign browser Origin is refused at the handshake; a session cookie or a token names the user
        "websocket": OriginPolicy(
            AuthMiddlewareStack(TokenAuthMiddleware(URLRouter([*websocket_urlpatterns, re_path(r"", _refuse_websocket)])))
        ),
        "lifespan": _lifespan,
    }
)
