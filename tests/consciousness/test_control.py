"""Engine control through the real entry points (APIClient, WebsocketCommunicator) against a ticking engine.

The engine side is composed as runtick composes it (inbox, tick loop, controller, stream publisher) on the
test's event loop, over the configured channel layer; the end-to-end runs on a real runtick are in
tests/dawn_site/test_runtick_control.py and tests/scaled/test_workers_control.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Permission, User
from django.core.cache import cache
from django.db import connections
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from consciousness import control
from consciousness.control import Controller
from consciousness.engine import Engine
from consciousness.groups import ENGINE_CONTROL, STREAM_CONTROL, StreamPublisher
from consciousness.hub import stream_hub
from consciousness.inbox import EngineInbox
from consciousness.loop import TickLoop
from consciousness.models import EngineControl
from dawn_site.asgi import application
from tests.conftest import local_browser
from tests.consciousness.test_stream import clean_layer  # noqa: F401  (the same autouse fixture)
from tests.factories import ENGINE_CONFIG

pytestmark = [pytest.mark.asyncio, pytest.mark.both_shapes, pytest.mark.django_db(transaction=True)]

EPOCH = uuid.UUID(int=42)


class RunningEngine:
    """A seeded engine ticking at `rate` on this event loop, controlled as runtick's is."""

    def __init__(self, rate: float = 50.0, heartbeat_s: float = 0.1) -> None:
        layer = get_channel_layer()
        self.engine = Engine(ENGINE_CONFIG, seed=5)
        self.inbox = EngineInbox(next_tick=lambda: self.engine.state.tick_number + 1)
        self.stream = StreamPublisher(layer, epoch=str(EPOCH), applied=lambda: self.inbox.applied, rate=rate)
        self.controller = Controller(stream=self.stream, epoch=EPOCH, heartbeat_s=heartbeat_s)
        self.inbox.on(ENGINE_CONTROL, self.controller.receive)
        self.loop = TickLoop(
            engine=self.engine, rate=rate, sinks=[self.stream], inputs=self.inbox.take,
            on_command=self.controller.on_command,
        )
        self.controller.attach(self.loop)
        self.layer = layer

    async def __aenter__(self) -> RunningEngine:
        await stream_hub().start()
        await self.inbox.listen(self.layer)
        self.task = asyncio.get_running_loop().create_task(self.loop.run())
        self.beat = asyncio.get_running_loop().create_task(self.controller.heartbeat())
        await self.ticked(2)
        return self

    async def ticked(self, count: int, timeout: float = 5.0) -> None:
        await self.reached(self.engine.state.tick_number + count, timeout)

    async def reached(self, target: int, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while self.engine.state.tick_number < target:
                await asyncio.sleep(0.005)

    async def __aexit__(self, *exc) -> None:
        self.beat.cancel()
        self.loop.stop()
        await self.task
        await self.controller.close()
        await self.stream.close()
        await self.inbox.close()


@pytest.fixture(autouse=True)
def _closed_writes(settings):
    settings.DAWN_OPEN_WRITES = False
    cache.clear()  # the write throttles count in the cache
    yield
    cache.clear()


def make_user(name: str, *perms: str) -> str:
    user = User.objects.create_user(name, password="pw")
    for perm in perms:
        user.user_permissions.add(Permission.objects.get(codename=perm))
    return Token.objects.create(user=user).key


def rest_client(key: str | None = None) -> APIClient:
    client = APIClient()
    if key:
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


async def post(client: APIClient, body: dict):
    """POST from a thread, as a server would: the view waits for the engine on this event loop."""
    return await sync_to_async(client.post)("/api/engine/control/", body, format="json")


async def get(client: APIClient, path: str):
    return await sync_to_async(client.get)(path)


rows = database_sync_to_async(lambda: list(EngineControl.objects.order_by("id").values()))


@pytest.fixture
async def release_connections():
    yield
    await database_sync_to_async(connections.close_all)()  # the thread's connection goes with the test


# --------------------------------------------------------------------------- REST


@pytest.mark.usefixtures("release_connections")
async def test_an_authorised_user_pauses_steps_sets_the_rate_and_resumes_over_rest_each_journalled():
    key = await database_sync_to_async(make_user)("ada", "control_engine")
    api = rest_client(key)
    async with RunningEngine() as running:
        paused = await post(api, {"action": "pause"})
        assert paused.status_code == 202, paused.json()
        body = paused.json()
        at = body["tick_number"]
        assert body["paused"] is True and body["action"] == "pause" and body["by"] == "ada"
        assert body["outcome"] == "applied" and body["tick_rate"] == 50 and body["epoch"] == str(EPOCH)
        await asyncio.sleep(0.2)
        assert running.engine.state.tick_number == at  # held: not one tick more

        stepped = (await post(api, {"action": "step", "ticks": 3})).json()
        assert stepped["tick_number"] == at and stepped["ticks"] == 3
        assert stepped["detail"] == f"stepping ticks {at + 1}..{at + 3}"
        await running.reached(at + 3)
        await asyncio.sleep(0.2)
        assert running.engine.state.tick_number == at + 3 and running.loop.paused

        rated = (await post(api, {"action": "rate", "rate": 25})).json()
        assert rated["tick_rate"] == 25 and rated["rate"] == 25 and rated["paused"] is True
        resumed = (await post(api, {"action": "resume"})).json()
        assert resumed["paused"] is False and resumed["tick_number"] == at + 3
        await running.ticked(2)
        assert running.loop.rate == 25

    journal = await rows()
    assert [(r["action"], r["outcome"], r["tick_number"]) for r in journal] == [
        ("pause", "applied", at), ("step", "applied", at), ("rate", "applied", at + 3),
        ("resume", "applied", at + 3),
    ]
    assert journal[1]["ticks"] == 3 and journal[2]["rate"] == 25 and journal[2]["tick_rate"] == 25
    assert {r["label"] for r in journal} == {"ada"} and journal[0]["requested_by_id"] is not None
    assert journal[0]["command"].hex == body["command"] and journal[0]["epoch"] == EPOCH

    listing = (await get(api, "/api/engine/control/")).json()
    assert [r["action"] for r in listing["results"]] == ["resume", "rate", "step", "pause"]  # newest first
    oldest = listing["results"][3]
    assert oldest["command"] == body["command"] and isinstance(oldest["applied_at"], float)
    only = (await get(api, "/api/engine/control/?action=step")).json()["results"]
    assert [r["ticks"] for r in only] == [3]


@pytest.mark.usefixtures("release_connections")
async def test_a_step_while_running_is_a_409_and_journalled_as_refused():
    key = await database_sync_to_async(make_user)("ada", "control_engine")
    async with RunningEngine() as running:
        before = running.engine.state.tick_number
        refused = await post(rest_client(key), {"action": "step", "ticks": 5})
        assert refused.status_code == 409 and "pause it" in refused.json()["error"]
        assert not running.loop.paused and running.loop.steps_left == 0
        assert running.engine.state.tick_number >= before
    assert [(r["action"], r["outcome"]) for r in await rows()] == [("step", "refused")]


@pytest.mark.usefixtures("release_connections")
async def test_without_authority_nothing_reaches_the_engine():
    key = await database_sync_to_async(make_user)("bob")  # no permission
    async with RunningEngine() as running:
        anonymous = await post(rest_client(), {"action": "pause"})
        assert anonymous.status_code in (401, 403) and "error" in anonymous.json()
        forbidden = await post(rest_client(key), {"action": "pause"})
        assert forbidden.status_code == 403
        await running.ticked(3)
        assert not running.loop.paused
    assert await rows() == []


@pytest.mark.parametrize(
    "body, field",
    [
        ({"action": "fly"}, "action"),
        ({}, "action"),
        ({"action": "step"}, "ticks"),
        ({"action": "step", "ticks": 0}, "ticks"),
        ({"action": "step", "ticks": 1001}, "ticks"),
        ({"action": "rate"}, "rate"),
        ({"action": "rate", "rate": 0}, "rate"),
        ({"action": "rate", "rate": 1000.5}, "rate"),
        ({"action": "rate", "rate": "fast"}, "rate"),
        ({"action": "pause", "ticks": 2}, "ticks"),
    ],
)
async def test_bad_commands_are_a_400_naming_the_field(body, field):
    key = await database_sync_to_async(make_user)("ada", "control_engine")
    response = await post(rest_client(key), body)
    assert response.status_code == 400 and field in response.json()["fields"], response.json()
    await database_sync_to_async(connections.close_all)()


@pytest.mark.usefixtures("release_connections")
async def test_an_engine_that_does_not_answer_is_a_503_with_retry_after(monkeypatch):
    monkeypatch.setattr(control, "ACK_TIMEOUT_S", 0.3)
    key = await database_sync_to_async(make_user)("ada", "control_engine")
    await stream_hub().start()  # a serving process, and no engine anywhere
    response = await post(rest_client(key), {"action": "pause"})
    assert response.status_code == 503 and response["Retry-After"]
    assert "did not answer" in response.json()["error"]


@pytest.mark.usefixtures("release_connections")
async def test_a_command_that_reaches_the_engine_too_late_is_not_applied(monkeypatch):
    async with RunningEngine() as running:
        running.controller.wallclock = lambda: 1e12  # the engine's clock is past every deadline
        key = await database_sync_to_async(make_user)("ada", "control_engine")
        response = await post(rest_client(key), {"action": "pause"})
        assert response.status_code == 503 and "after its sender stopped waiting" in response.json()["error"]
        await running.ticked(2)
        assert not running.loop.paused
    assert [(r["action"], r["outcome"]) for r in await rows()] == [("pause", "expired")]


# --------------------------------------------------------------------------- /health/


@pytest.mark.usefixtures("release_connections")
async def test_health_says_paused_while_the_engine_is_held_and_stale_once_it_falls_silent(settings):
    stream = {**settings.DAWN_CONFIG["stream"], "stale_after": 0.4}
    settings.DAWN_CONFIG = {**settings.DAWN_CONFIG, "stream": stream}
    key = await database_sync_to_async(make_user)("ada", "control_engine")
    api = rest_client(key)
    async with RunningEngine(heartbeat_s=0.1) as running:
        assert (await post(api, {"action": "pause"})).status_code == 202
        await asyncio.sleep(0.8)  # twice stale_after without a tick
        health = await get(api, "/health/")
        assert health.status_code == 200 and health.json()["engine"]["status"] == "paused", health.json()
        running.beat.cancel()  # an engine that stops saying so is not paused but gone
        await asyncio.sleep(0.6)
        health = await get(api, "/health/")
        assert health.status_code == 503 and health.json()["engine"]["status"] == "stale"


# --------------------------------------------------------------------------- /ws


async def socket(path: str = "/ws", *, browser: bool = True) -> tuple[WebsocketCommunicator, dict]:
    communicator = WebsocketCommunicator(application, path)
    if browser:
        local_browser(communicator)
    connected, _ = await communicator.connect()
    assert connected
    hello = await communicator.receive_json_from()
    assert hello["type"] == "connection"
    return communicator, hello


async def until(communicator: WebsocketCommunicator, kind: str, timeout: float = 3.0) -> dict:
    async with asyncio.timeout(timeout):
        while True:
            message = await communicator.receive_json_from(timeout=timeout)
            if message["type"] == kind:
                return message


async def test_a_control_message_is_acknowledged_to_its_sender_and_broadcast_to_every_client(settings):
    settings.DAWN_OPEN_WRITES = True  # local play: a loopback browser may control without a user
    async with RunningEngine() as running:
        sender, _ = await socket()
        watcher, hello = await socket()
        assert hello["data"]["paused"] is False and hello["data"]["tick_rate"] == 50
        await sender.send_json_to({"type": "control", "action": "pause", "ref": "c1"})
        ack = await until(sender, "control_applied")
        assert ack["data"]["ref"] == "c1" and ack["data"]["paused"] is True and ack["data"]["action"] == "pause"
        assert ack["data"]["tick_number"] == running.engine.state.tick_number
        assert ack["data"]["by"] == "local play (127.0.0.1)"
        seen = await until(watcher, "control")
        assert seen["data"] == {k: v for k, v in ack["data"].items() if k != "ref"}

        # a client connecting now is told the engine is paused
        late, hello = await socket()
        assert hello["data"]["paused"] is True

        await sender.send_json_to({"type": "control", "action": "rate", "rate": 20, "ref": "c2"})
        assert (await until(sender, "control_applied"))["data"]["tick_rate"] == 20
        await sender.send_json_to({"type": "control", "action": "resume", "ref": "c3"})
        assert (await until(watcher, "control"))["data"]["tick_rate"] == 20  # the rate command's broadcast
        assert (await until(watcher, "control"))["data"]["paused"] is False
        assert stream_hub().paused is False and stream_hub().tick_rate == 20
        for communicator in (sender, watcher, late):
            await communicator.disconnect()
    assert [r["label"] for r in await rows()] == ["local play (127.0.0.1)"] * 3
    await database_sync_to_async(connections.close_all)()


async def test_a_step_while_running_is_a_conflict_error_and_the_socket_lives(settings):
    settings.DAWN_OPEN_WRITES = True
    async with RunningEngine():
        communicator, _ = await socket()
        await communicator.send_json_to({"type": "control", "action": "step", "ticks": 2, "ref": 9})
        error = await until(communicator, "error")
        assert error["data"]["code"] == "conflict" and error["data"]["ref"] == 9
        assert (await until(communicator, "tick"))["type"] == "tick"
        await communicator.disconnect()
    await database_sync_to_async(connections.close_all)()


async def test_control_without_authority_is_refused_by_code_and_a_user_with_it_is_journalled_by_name():
    key = await database_sync_to_async(make_user)("bob", "send_stimulus")  # may stimulate, not control
    async with RunningEngine() as running:
        anonymous, _ = await socket()
        await anonymous.send_json_to({"type": "control", "action": "pause", "ref": "a"})
        assert (await until(anonymous, "error"))["data"]["code"] == "unauthorised"
        bob, _ = await socket(f"/ws?token={key}", browser=False)
        await bob.send_json_to({"type": "control", "action": "pause", "ref": "b"})
        error = await until(bob, "error")
        assert error["data"]["code"] == "forbidden" and error["data"]["ref"] == "b"
        await running.ticked(2)
        assert not running.loop.paused
        cy_key = await database_sync_to_async(make_user)("cy", "control_engine")
        cy, _ = await socket(f"/ws?token={cy_key}", browser=False)  # a user needs no browser origin
        await cy.send_json_to({"type": "control", "action": "pause", "ref": "c"})
        assert (await until(cy, "control_applied"))["data"]["by"] == "cy"
        for communicator in (anonymous, bob, cy):
            await communicator.disconnect()
    journal = await rows()
    assert [(r["label"], r["action"]) for r in journal] == [("cy", "pause")] and journal[0]["requested_by_id"]
    await database_sync_to_async(connections.close_all)()


async def test_control_with_no_engine_is_unavailable_and_the_socket_answers_meanwhile(settings, monkeypatch):
    settings.DAWN_OPEN_WRITES = True
    monkeypatch.setattr(control, "ACK_TIMEOUT_S", 0.5)
    communicator, _ = await socket()
    await communicator.send_json_to({"type": "control", "action": "pause", "ref": "p"})
    await communicator.send_json_to({"type": "ping", "data": 1, "ref": "q"})
    assert (await communicator.receive_json_from(timeout=0.3))["type"] == "pong"  # not held up by the wait
    error = await until(communicator, "error")
    assert error["data"]["code"] == "unavailable" and error["data"]["ref"] == "p"
    await communicator.disconnect()


async def test_control_commands_are_rate_limited_per_connection(settings, monkeypatch):
    from consciousness import consumers

    settings.DAWN_OPEN_WRITES = True
    monkeypatch.setattr(consumers, "CONTROL_LIMIT", (0.001, 3.0))
    async with RunningEngine():
        communicator, _ = await socket()
        for n in range(4):
            await communicator.send_json_to({"type": "control", "action": "rate", "rate": 30 + n, "ref": n})
        answers = {}
        with contextlib.suppress(TimeoutError):
            while len(answers) < 4:
                message = await communicator.receive_json_from(timeout=3)
                if message["type"] in ("control_applied", "error"):
                    answers[message["data"]["ref"]] = message
        assert [answers[n]["type"] for n in range(3)] == ["control_applied"] * 3
        assert answers[3]["type"] == "error" and answers[3]["data"]["code"] == "rate_limited"
        await communicator.disconnect()
    await database_sync_to_async(connections.close_all)()



async def test_an_unthrottled_engine_is_announced_with_a_null_rate_not_an_unencodable_infinity():
    await stream_hub().start()
    stream_hub().dispatch({"type": STREAM_CONTROL, "state": {"paused": False, "rate": float("inf")}})
    communicator, hello = await socket()
    assert hello["data"]["tick_rate"] is None
    await communicator.disconnect()


async def test_the_engine_checks_what_reaches_it_whoever_sent_it():
    async with RunningEngine() as running:
        base = {"type": ENGINE_CONTROL, "by": "script", "expires": 1e12, "user": None, "requested_at": 1.0}
        bad = {**base, "command": uuid.uuid4().hex, "action": "step", "ticks": 5000, "rate": None}
        reply = await stream_hub().control_request(bad, timeout=2)
        assert reply["outcome"] == "refused" and "ticks" in reply["detail"] and reply["data"]["ticks"] is None
        nameless = {**base, "command": "not-a-uuid", "action": "pause"}
        assert await stream_hub().control_request(nameless, timeout=0.3) is None  # dropped, nothing applied
        await running.ticked(2)
        assert not running.loop.paused and running.loop.steps_left == 0
    assert await rows() == []  # nothing a row could name
    await database_sync_to_async(connections.close_all)()
