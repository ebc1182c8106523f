"""Who may write, and from where: reads stay open; writes need a user holding a permission.

The one exception is local play: with `DAWN_OPEN_WRITES` set, writes need no user, but only for
clients on a loopback address whose request could not have been forged by another site (an allowed
Origin, or none; a JSON body over HTTP, which a cross-site form cannot send without a CORS preflight).
A non-loopback client never gets open writes, whatever the setting says.

WebSocket origins: a browser's Origin must be the server's own (same host and port as the Host header,
itself checked against ALLOWED_HOSTS) or one of `api.cors_origins`, or the handshake is refused; a client that sends no Origin (not a browser) may read, and may write only as an
authenticated user (session cookie, or a DRF token as `?token=` or an `Authorization: Token` header).
"""

from __future__ import annotations

import ipaddress
import time
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlparse

from channels.db import database_sync_to_async
from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from rest_framework.authtoken.models import Token
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.throttling import SimpleRateThrottle

ORIGIN_ABSENT = "absent"
ORIGIN_ALLOWED = "allowed"


def is_loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False


def origin_allowed(origin: str, host: str | None) -> bool:
    """The Origin is this server's own (its Host) or one of api.cors_origins; anything else is foreign."""
    parsed = urlparse(origin)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        return False  # "null", file://, and other opaque origins
    if host is not None and parsed.netloc.lower() == host.lower():
        return True
    return f"{parsed.scheme}://{parsed.netloc}".lower() in {o.rstrip("/").lower() for o in settings.DAWN_CONFIG["api"]["cors_origins"]}


def user_may(user: Any, permission: str) -> bool:
    return bool(user is not None and user.is_authenticated and user.has_perm(permission))


def may_write(*, user: Any, permission: str, client: str | None, unforgeable: bool) -> bool:
    """The one rule: a user with the permission, or open writes for an unforgeable loopback request."""
    if user_may(user, permission):
        return True
    return bool(settings.DAWN_OPEN_WRITES) and is_loopback(client) and unforgeable


def view_handles(view: Any, method: str) -> bool:
    """Whether a DRF view has a handler for the method (else DRF answers 405 once the checks pass)."""
    name = method.lower()
    return name in view.http_method_names and hasattr(view, name)


class WritePermission(BasePermission):
    """DRF: reads for everyone; a write needs `view.write_permission` (or the local-play rule above)."""

    message = "writing needs an authenticated user with the permission (see the README: users and tokens)"

    def has_permission(self, request, view) -> bool:
        if request.method in SAFE_METHODS or not view_handles(view, request.method):
            return True  # reads are open; a method the view does not serve is its 405, for anyone
        origin = request.headers.get("Origin")
        unforgeable = request.content_type.split(";")[0].strip() == "application/json" and (
            origin is None or origin_allowed(origin, request.get_host())
        )
        permission = getattr(view, "write_permission", None)
        if permission is None:
            return False  # a view that names no write permission takes no writes
        return may_write(
            user=request.user,
            permission=permission,
            client=request.META.get("REMOTE_ADDR"),
            unforgeable=unforgeable,
        )


class OriginPolicy:
    """Channels middleware: refuse a browser from a foreign Origin; mark the scope with what was seen."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope, receive, send):
        headers = dict(scope.get("headers", []))
        origin, host = headers.get(b"origin"), headers.get(b"host")
        if origin is None:
            scope = {**scope, "dawn_origin": ORIGIN_ABSENT}
        elif origin_allowed(origin.decode("latin1"), host.decode("latin1") if host else None):
            scope = {**scope, "dawn_origin": ORIGIN_ALLOWED}
        else:
            return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)


async def ws_write_refusal(scope: dict, permission: str) -> tuple[str, str] | None:
    """None if the socket may write, else the error code and message that say why not."""
    client = (scope.get("client") or (None,))[0]
    user = scope.get("user")
    unforgeable = scope.get("dawn_origin") == ORIGIN_ALLOWED
    authenticated = user is not None and user.is_authenticated
    # has_perm reads the database: off the event loop, and only for a user there is
    if authenticated and await database_sync_to_async(user_may)(user, permission):
        return None
    if may_write(user=None, permission=permission, client=client, unforgeable=unforgeable):
        return None
    if authenticated:
        return "forbidden", f"user {user.get_username()!r} lacks the permission {permission}"
    return "unauthorised", "writing needs a user with the permission: connect with ?token=… (see the README)"


class TokenAuthMiddleware:
    """Channels middleware: a DRF token (`?token=` or `Authorization: Token ...`) logs the socket in."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope, receive, send):
        key = _token_of(scope)
        if key is not None:
            user = await _token_user(key)
            if user is not None:
                scope = {**scope, "user": user}
        return await self.application(scope, receive, send)


def _token_of(scope: dict) -> str | None:
    header = dict(scope.get("headers", [])).get(b"authorization", b"").decode("latin1")
    if header.startswith("Token "):
        return header[len("Token "):].strip() or None
    tokens = parse_qs(scope.get("query_string", b"").decode("latin1")).get("token")
    return tokens[0] if tokens else None


@database_sync_to_async
def _token_user(key: str) -> Any:
    try:
        return Token.objects.select_related("user").get(key=key).user
    except Token.DoesNotExist:
        return AnonymousUser()


class TokenBucket:
    """`rate` actions a second on average, `burst` at once; `take()` says whether one may go now."""

    __slots__ = ("rate", "burst", "tokens", "stamp", "clock")

    def __init__(self, rate: float, burst: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens, self.stamp = burst, clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class StimulusLimit:
    """Per connection: a token bucket, one rate_limited answer a second at most, and a verdict on abuse."""

    RATE, BURST = 10.0, 20.0  # stimuli a second, and at once
    ABUSE_EXCESS = 200  # stimuli refused within ABUSE_WINDOW_S that make a client an abuser
    ABUSE_WINDOW_S = 10.0

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.bucket = TokenBucket(self.RATE, self.BURST, clock=clock)
        self.clock = clock
        self.last_answer = float("-inf")
        self.excess: deque[float] = deque()

    def check(self) -> str:
        """"ok", "answer" (refused: say so), "quiet" (refused: already said this second) or "abuse"."""
        if self.bucket.take():
            return "ok"
        now = self.clock()
        self.excess.append(now)
        while self.excess and self.excess[0] < now - self.ABUSE_WINDOW_S:
            self.excess.popleft()
        if len(self.excess) >= self.ABUSE_EXCESS:
            return "abuse"
        if now - self.last_answer >= 1.0:
            self.last_answer = now
            return "answer"
        return "quiet"


class _WriteThrottle(SimpleRateThrottle):
    """DRF: throttle writes only (429 with Retry-After); reads are never throttled."""

    def allow_request(self, request, view) -> bool:
        if request.method in SAFE_METHODS or not view_handles(view, request.method):
            return True
        return super().allow_request(request, view)


class WriteUserThrottle(_WriteThrottle):
    """Writes per authenticated user."""

    scope = "writes_user"

    def get_cache_key(self, request, view) -> str | None:
        if not request.user or not request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


class WriteAddressThrottle(_WriteThrottle):
    """Writes per client address, whoever they are."""

    scope = "writes_address"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
