"""Who may connect and write: browser origins checked at the handshake, writes by permission or local play."""

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory
from rest_framework.request import Request
from rest_framework.parsers import JSONParser

from consciousness.access import WritePermission, may_write
from dawn_site.asgi import application


@pytest.mark.parametrize("origin", [b"https://evil.example", b"null", b"http://localhost:9999", b"file://", b"http://127.0.0.1:8001"])
@pytest.mark.asyncio
async def test_a_browser_from_a_foreign_origin_is_refused_at_the_handshake(origin):
    headers = [(b"origin", origin), (b"host", b"127.0.0.1:8000")]
    communicator = WebsocketCommunicator(application, "/ws", headers=headers)
    connected, _ = await communicator.connect()
    assert not connected
    await communicator.disconnect()


@pytest.mark.parametrize("headers", [
        [(b"origin", b"http://localhost:5173")],  # api.cors_origins
        [(b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000")],  # the server's own page
        [],  # not a browser
    ])
@pytest.mark.asyncio
async def test_allowed_origins_and_non_browser_clients_may_connect(headers):
    communicator = WebsocketCommunicator(application, "/ws", headers=headers)
    connected, _ = await communicator.connect()
    assert connected
    assert (await communicator.receive_json_from())["type"] == "connection"
    await communicator.disconnect()


class Staff:
    is_authenticated = True

    def __init__(self, *perms):
        self.perms = set(perms)

    def has_perm(self, perm):
        return perm in self.perms


@pytest.mark.parametrize(
    "user, open_writes, client, unforgeable, allowed",
    [
        (Staff("app.write"), False, "203.0.113.9", False, True),  # a user with the permission, from anywhere
        (Staff(), False, "127.0.0.1", True, False),  # a user without it
        (AnonymousUser(), False, "127.0.0.1", True, False),  # closed by default
        (AnonymousUser(), True, "127.0.0.1", True, True),  # local play
        (AnonymousUser(), True, "::1", True, True),
        (AnonymousUser(), True, "203.0.113.9", True, False),  # never for a remote client
        (AnonymousUser(), True, "127.0.0.1", False, False),  # never for a forgeable request
    ],
)
def test_the_write_rule(settings, user, open_writes, client, unforgeable, allowed):
    settings.DAWN_OPEN_WRITES = open_writes
    assert may_write(user=user, permission="app.write", client=client, unforgeable=unforgeable) is allowed


class View:
    write_permission = "app.write"


@pytest.mark.parametrize(
    "content_type, origin, allowed",
    [
        ("application/json", None, True),
        ("application/json", "http://localhost:5173", True),
        ("application/json", "https://evil.example", False),
        ("application/x-www-form-urlencoded", None, False),  # what a cross-site form can send
        ("text/plain", "https://evil.example", False),
        ("application/json", "http://testserver", True),  # the server's own page
        ("application/json", "null", False),
    ],
)
def test_open_writes_refuse_what_another_site_could_forge(settings, content_type, origin, allowed):
    settings.DAWN_OPEN_WRITES = True
    headers = {"HTTP_ORIGIN": origin} if origin else {}
    django_request = RequestFactory().post("/api/runs/", data="{}", content_type=content_type, **headers)
    request = Request(django_request, parsers=[JSONParser()])
    request.user = AnonymousUser()
    assert WritePermission().has_permission(request, View()) is allowed
