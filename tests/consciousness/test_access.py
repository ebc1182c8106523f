"""Who may connect and write: browser origins checked at the handshake, writes by permission or local play."""

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory
from rest_framework.request import Request
from rest_framework.parsers import JSONParser
from rest_framework.views import APIView

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


class View(APIView):
    write_permission = "app.write"

    def post(self, request):
        raise AssertionError("only the permission is asked here")


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


# --------------------------------------------------------------------------- writes over /ws


async def stimulus_answer(communicator, **fields):
    await communicator.send_json_to({"type": "stimulus", "kind": "excite", "intensity": 0.5, **fields})
    while True:
        message = await communicator.receive_json_from(timeout=3)
        if message["type"] != "tick":
            return message


async def open_socket(path="/ws", *, browser=True):
    from tests.conftest import local_browser

    communicator = WebsocketCommunicator(application, path)
    if browser:
        local_browser(communicator)
    connected, _ = await communicator.connect()
    assert connected
    assert (await communicator.receive_json_from())["type"] == "connection"
    return communicator


@pytest.mark.asyncio
async def test_a_stimulus_without_authority_is_refused_and_the_socket_lives(settings):
    settings.DAWN_OPEN_WRITES = False
    communicator = await open_socket()
    refused = await stimulus_answer(communicator, ref="r1")
    assert refused["type"] == "error" and refused["data"]["code"] == "unauthorised" and refused["data"]["ref"] == "r1"
    await communicator.send_json_to({"type": "ping", "data": 1})
    assert (await communicator.receive_json_from())["type"] == "pong"
    await communicator.disconnect()


@pytest.mark.asyncio
async def test_a_client_without_an_origin_may_read_but_not_write_even_with_open_writes(settings):
    settings.DAWN_OPEN_WRITES = True
    communicator = await open_socket(browser=False)
    refused = await stimulus_answer(communicator, ref="r2")
    assert refused["data"]["code"] == "unauthorised"
    await communicator.disconnect()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("granted, code", [(False, "forbidden"), (True, None)])
async def test_a_token_names_the_user_whose_permission_decides(settings, granted, code):
    from channels.db import database_sync_to_async
    from django.contrib.auth.models import Permission, User
    from rest_framework.authtoken.models import Token

    settings.DAWN_OPEN_WRITES = False

    def make_user():
        user = User.objects.create_user("ada", password="x")
        if granted:
            user.user_permissions.add(Permission.objects.get(codename="send_stimulus"))
        return Token.objects.create(user=user).key

    key = await database_sync_to_async(make_user)()
    communicator = await open_socket(f"/ws?token={key}", browser=False)
    await communicator.send_json_to({"type": "stimulus", "kind": "excite", "intensity": 0.5, "ref": "r3"})
    if code is None:  # accepted: nothing answers until a tick applies it
        assert await communicator.receive_nothing(timeout=0.5)
    else:
        answer = await communicator.receive_json_from(timeout=3)
        assert answer["data"]["code"] == code and answer["data"]["ref"] == "r3"
    await communicator.disconnect()
    from django.db import connections

    await database_sync_to_async(connections.close_all)()  # the executor thread's connection goes with the test


@pytest.mark.asyncio
async def test_a_stimulus_flood_is_told_once_a_second_and_an_abuser_is_closed(settings, monkeypatch):
    from consciousness import access

    settings.DAWN_OPEN_WRITES = True
    monkeypatch.setattr(access.StimulusLimit, "ABUSE_EXCESS", 60)
    communicator = await open_socket()
    for n in range(80):
        await communicator.send_json_to({"type": "stimulus", "kind": "calm", "intensity": 0.1, "ref": n})
    frames_seen = []
    while True:
        output = await communicator.receive_output(timeout=3)
        if output["type"] == "websocket.close":
            break
        message = __import__("json").loads(output["text"])
        if message["type"] == "error":
            frames_seen.append(message["data"]["code"])
    assert frames_seen == ["rate_limited"]  # the burst passes, the first excess is told, the rest are not
    assert output["code"] == 4008


def test_the_token_bucket_refills_at_its_rate():
    from consciousness.access import TokenBucket

    now = [0.0]
    bucket = TokenBucket(rate=2.0, burst=3.0, clock=lambda: now[0])
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    now[0] += 1.0
    assert [bucket.take() for _ in range(3)] == [True, True, False]


@pytest.mark.asyncio
async def test_a_stimulus_the_engine_rejected_is_answered_to_its_sender():
    from consciousness.frames import Frame, tick_message
    from consciousness.groups import STREAM_TICK
    from consciousness.hub import StreamHub
    from consciousness.sockets import Client

    sent = []

    async def send(message):
        sent.append(message)

    hub = StreamHub()
    client = Client(send, hub)
    hub.register(client)
    hub.remember_stimulus("k1", client)
    envelope = {"type": STREAM_TICK, "message": tick_message({"tick_number": 5}), "epoch": "e"}
    hub.dispatch({**envelope, "stimuli": [{"key": "k1", "ref": "mine", "rejected": "queue_full"}]})
    for _ in range(5):
        await __import__("asyncio").sleep(0)
    errors = [m for m in sent if '"error"' in m.get("text", "")]
    assert errors and '"rate_limited"' in errors[0]["text"] and '"mine"' in errors[0]["text"]
    assert Frame  # imported for the envelope's shape
