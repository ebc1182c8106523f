"""The /ws stream: one channel-layer member per process, one encoding per tick, slow clients skip and go."""

import asyncio
import json

import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from consciousness.groups import ENGINE_GROUP, STREAM_GROUP, STREAM_TICK
from consciousness import sockets as sockets_module
from consciousness.frames import (
    CLOSE_PROTOCOL_ABUSE,
    CLOSE_SLOW_CLIENT,
    CLOSE_TRY_AGAIN_LATER,
    Frame,
    tick_message,
)
from consciousness.hub import StreamHub, stream_hub
from consciousness.sockets import Client
from dawn_site.asgi import application
from tests.conftest import local_browser

pytestmark = [pytest.mark.asyncio, pytest.mark.both_shapes, pytest.mark.usefixtures("open_writes")]

TICK = {
    "tick_number": 7,
    "timestamp": 1700000000.5,
    "scup": 55.0,
    "entropy": 0.5,
    "mood": "curious",
    "neural_activity": 0.4,
    "consciousness_unity": 0.3,
    "memory_pressure": 0.2,
    "active_processes": [],
    "subsystems": {
        "neural": {"firing_rate": 80.0, "connectivity": 0.3},
        "consciousness": {"multi-state": 0.4, "entanglement": 0.2},
        "chaos": {"lyapunov": 0.05, "fractal_dim": 1.5},
    },
}


@pytest.fixture(autouse=True)
async def clean_layer():
    layer = get_channel_layer()
    await layer.flush()
    yield layer
    await stream_hub().stop()
    await layer.flush()


async def group_members(layer, group: str) -> set[str]:
    if hasattr(layer, "groups"):  # the in-memory layer
        return set(layer.groups.get(group, {}))
    connection = layer.connection(layer.consistent_hash(group))  # channels_redis: a sorted set per group
    return {name.decode() for name in await connection.zrange(layer._group_key(group), 0, -1)}


async def connect() -> WebsocketCommunicator:
    communicator = local_browser(WebsocketCommunicator(application, "/ws"))
    connected, _ = await communicator.connect()
    assert connected
    hello = await communicator.receive_json_from()
    assert hello["type"] == "connection"
    return communicator


async def publish_tick(tick: dict = TICK, **extra) -> None:
    await get_channel_layer().group_send(STREAM_GROUP, {"type": STREAM_TICK, "message": tick_message(tick), "epoch": "e1", **extra})


async def test_every_client_receives_each_tick_through_one_group_member(clean_layer):
    clients = [await connect() for _ in range(3)]
    await publish_tick()
    for communicator in clients:
        assert await communicator.receive_json_from() == {"type": "tick", "data": TICK}
    # three sockets, one member of the stream group: this process's hub
    assert await group_members(clean_layer, STREAM_GROUP) == {stream_hub().channel}
    for communicator in clients:
        await communicator.disconnect()
    assert stream_hub().clients == {}


async def test_connection_snapshot_carries_latest_tick_epoch_and_client_count():
    first = await connect()
    await publish_tick()
    await first.receive_json_from()
    second = WebsocketCommunicator(application, "/ws")
    await second.connect()
    hello = await second.receive_json_from()
    assert hello["data"]["tick"] == TICK
    assert hello["data"]["epoch"] == "e1"
    assert hello["data"]["clients"] == 2
    await first.disconnect()
    await second.disconnect()


@pytest.mark.parametrize(
    "raw, code, fragment",
    [
        ("not json", "malformed", "not valid JSON"),
        ("[1, 2]", "invalid_message", "object"),
        ('{"kind": "excite"}', "invalid_message", "type"),
        ('{"type": "teleport"}', "unknown_type", "unknown message type"),
        ('{"type": "stimulus", "kind": "tickle", "intensity": 0.5}', "invalid_field", "kind"),
        ('{"type": "stimulus", "kind": "excite", "intensity": 7}', "invalid_field", "intensity"),
        ('{"type": "stimulus", "kind": "excite", "intensity": 0.5, "ref": {"a": 1}}', "invalid_field", "ref"),
        ("x" * 20000, "too_large", "limit"),
    ],
)
async def test_malformed_messages_get_an_error_and_the_socket_stays_open(raw, code, fragment):
    communicator = await connect()
    await communicator.send_to(text_data=raw)
    reply = await communicator.receive_json_from()
    assert reply["type"] == "error" and reply["data"]["code"] == code and fragment in reply["data"]["message"]
    await communicator.send_json_to({"type": "ping", "data": 1})
    pong = await communicator.receive_json_from()
    assert pong["type"] == "pong" and pong["data"]["echo"] == 1
    await communicator.disconnect()


async def test_binary_frames_that_are_not_msgpack_are_refused_politely():
    communicator = await connect()
    await communicator.send_to(bytes_data=b"\x00\x01")
    reply = await communicator.receive_json_from()
    assert reply["type"] == "error" and reply["data"]["code"] == "malformed"
    await communicator.disconnect()


async def test_heartbeat_and_get_state_answer_with_the_latest_tick():
    communicator = await connect()
    await publish_tick()
    await communicator.receive_json_from()
    await communicator.send_json_to({"type": "heartbeat"})
    reply = await communicator.receive_json_from()
    assert reply["type"] == "heartbeat_response" and reply["data"]["tick_number"] == 7
    await communicator.send_json_to({"type": "get_state"})
    assert await communicator.receive_json_from() == {"type": "state", "data": {"tick": TICK, "ref": None}}
    await communicator.disconnect()


async def test_stimulus_goes_to_the_engine_and_is_acknowledged_by_the_tick_that_applied_it(clean_layer):
    engine_channel = await clean_layer.new_channel()
    await clean_layer.group_add(ENGINE_GROUP, engine_channel)
    communicator = await connect()
    await communicator.send_json_to({"type": "stimulus", "kind": "excite", "intensity": 0.8, "ref": "s-1"})
    received = await asyncio.wait_for(clean_layer.receive(engine_channel), 2)
    assert received["type"] == "engine.stimulus"
    assert (received["kind"], received["intensity"], received["ref"]) == ("excite", 0.8, "s-1")
    await publish_tick({**TICK, "tick_number": 8}, stimuli=[{"key": received["key"], "ref": "s-1"}])
    messages = [await communicator.receive_json_from(), await communicator.receive_json_from()]
    assert {"type": "stimulus_applied", "data": {"ref": "s-1", "tick_number": 8}} in messages
    await communicator.disconnect()


class StuckSocket:
    """An ASGI send whose socket stops being writable after `writable` frames (a close frame waits too)."""

    def __init__(self, writable: int) -> None:
        self.writable = writable
        self.frames: list[dict] = []
        self.gate = asyncio.get_running_loop().create_future()

    async def __call__(self, message: dict) -> None:
        if len(self.frames) >= self.writable:
            await self.gate
        self.frames.append(message)


def tick_frame(n: int) -> Frame:
    return Frame(tick_message({"tick_number": n}))


def numbers(frames: list[dict]) -> list[int]:
    return [json.loads(f["text"])["data"]["tick_number"] for f in frames if f["type"] == "websocket.send"]


async def test_a_stalled_client_skips_to_the_newest_tick_without_holding_others_back():
    hub = StreamHub(slow_after=50)
    stalled_send, healthy_send = StuckSocket(writable=2), StuckSocket(writable=10**9)
    stalled, healthy = Client(stalled_send, hub), Client(healthy_send, hub)
    hub.register(stalled)
    hub.register(healthy)
    for n in range(1, 11):
        hub.broadcast(tick_frame(n))
    assert numbers(healthy_send.frames) == list(range(1, 11))
    assert numbers(stalled_send.frames) == [1, 2]
    stalled_send.gate.set_result(None)  # the socket drains again
    await asyncio.sleep(0)
    # the frame that was in flight, then straight to the newest: the gap shows in tick_number
    assert numbers(stalled_send.frames) == [1, 2, 3, 10]
    hub.broadcast(tick_frame(11))
    assert numbers(stalled_send.frames)[-1] == 11


async def test_a_client_that_stays_behind_is_closed_with_the_slow_client_code():
    hub = StreamHub(slow_after=5)
    send = StuckSocket(writable=1)
    client = Client(send, hub)
    hub.register(client)
    for n in range(1, 20):
        hub.broadcast(tick_frame(n))
    assert client.id not in hub.clients and hub.evicted == 1
    send.gate.set_result(None)
    for _ in range(5):
        await asyncio.sleep(0)
    closes = [f for f in send.frames if f["type"] == "websocket.close"]
    assert closes and closes[0]["code"] == CLOSE_SLOW_CLIENT


async def test_a_send_that_fails_drops_the_client():
    hub = StreamHub()

    async def gone(message):
        raise ConnectionResetError("peer went away")

    client = Client(gone, hub)
    hub.register(client)
    hub.broadcast(tick_frame(1))
    assert hub.clients == {}


class Aborts:
    """The transport's abort as the hub sees it (dawn_site.server's protocol puts the real one in the scope)."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self) -> None:
        self.calls.append(asyncio.get_running_loop().time())


async def test_an_evicted_client_whose_close_cannot_be_written_is_aborted(monkeypatch):
    monkeypatch.setattr(sockets_module, "CLOSE_WRITE_S", 0.05)
    hub, send, abort = StreamHub(slow_after=5), StuckSocket(writable=1), Aborts()
    client = Client(send, hub, abort=abort)
    hub.register(client)
    for n in range(1, 20):
        hub.broadcast(tick_frame(n))
    assert client.closed and abort.calls == []
    await asyncio.sleep(0.2)
    # the socket never became writable: the close frame was given up on and the connection reset
    assert len(abort.calls) == 1
    assert not [f for f in send.frames if f["type"] == "websocket.close"]


async def test_an_evicted_client_that_does_not_answer_the_close_is_aborted_soon_after(monkeypatch):
    monkeypatch.setattr(sockets_module, "CLOSE_HANDSHAKE_S", 0.05)
    hub, send, abort = StreamHub(), StuckSocket(writable=10**9), Aborts()
    client = Client(send, hub, abort=abort)
    hub.register(client)
    hub.evict(client, reason="stimulus flood", code=CLOSE_PROTOCOL_ABUSE)
    await asyncio.sleep(0.01)
    assert [f["code"] for f in send.frames if f["type"] == "websocket.close"] == [CLOSE_PROTOCOL_ABUSE]
    assert abort.calls == []  # its turn to answer the close
    await asyncio.sleep(0.2)
    assert len(abort.calls) == 1


async def test_a_client_whose_send_fails_is_aborted_at_once():
    hub, abort = StreamHub(), Aborts()

    async def gone(message):
        raise RuntimeError("Unexpected ASGI message 'websocket.send', after sending 'websocket.close'.")

    hub.register(Client(gone, hub, abort=abort))
    hub.broadcast(tick_frame(1))
    assert hub.clients == {} and len(abort.calls) == 1


async def test_an_evicted_client_is_not_served_any_more(clean_layer):
    engine_channel = await clean_layer.new_channel()
    await clean_layer.group_add(ENGINE_GROUP, engine_channel)
    communicator = await connect()
    (client,) = stream_hub().clients.values()
    stream_hub().evict(client, reason="slow client")
    closed = await communicator.receive_output()
    assert closed == {"type": "websocket.close", "code": CLOSE_SLOW_CLIENT, "reason": "slow client"}
    # its socket is on its way out: what it still sends is dropped, stimuli included
    await communicator.send_json_to({"type": "ping", "data": 1})
    await communicator.send_json_to({"type": "stimulus", "kind": "excite", "intensity": 0.5})
    assert await communicator.receive_nothing(timeout=0.2)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(clean_layer.receive(engine_channel), 0.2)
    await communicator.disconnect()


async def test_each_tick_is_encoded_once_for_all_clients(monkeypatch):
    import consciousness.frames as frames

    calls = []
    real = frames.encode_json
    monkeypatch.setattr(frames, "encode_json", lambda message: calls.append(message) or real(message))
    hub = StreamHub()
    sends = [StuckSocket(writable=10**9) for _ in range(25)]
    for send in sends:
        hub.register(Client(send, hub))
    hub.dispatch({"type": STREAM_TICK, "message": tick_message(TICK), "epoch": "e"})
    assert len(calls) == 1
    assert all(send.frames[0] is sends[0].frames[0] for send in sends)


async def test_group_members_rejoin_before_the_layer_forgets_them_even_when_idle(monkeypatch):
    from channels.layers import InMemoryChannelLayer

    from consciousness import groups

    monkeypatch.setattr(groups, "GROUP_REFRESH_S", 0.2)
    layer = InMemoryChannelLayer(group_expiry=1)  # forgets a member two seconds after it joined
    received = []
    member = groups.GroupMember("dawn.test", received.append, name="test-member")
    await member.join(layer)
    try:
        await asyncio.sleep(3.0)  # no message all that time: only the timer keeps the membership
        await layer.group_send("dawn.test", {"type": "hello"})
        for _ in range(100):
            if received:
                break
            await asyncio.sleep(0.01)
        assert received == [{"type": "hello"}]
    finally:
        await member.leave()
    assert not member.running


async def test_connections_from_one_address_are_capped_and_the_one_over_is_told_to_come_back_later():
    hub = stream_hub()
    hub.max_per_address = 2
    first, second = await connect(), await connect()
    over = local_browser(WebsocketCommunicator(application, "/ws"))
    connected, _ = await over.connect()
    assert connected  # accepted, then closed with a code the clients back off on
    closed = await over.receive_output()
    assert closed["type"] == "websocket.close" and closed["code"] == CLOSE_TRY_AGAIN_LATER, closed
    assert "more than 2 connections from 127.0.0.1" in closed["reason"]
    assert len(hub.clients) == 2 and hub.per_address["127.0.0.1"] == 2

    elsewhere = local_browser(WebsocketCommunicator(application, "/ws"))
    elsewhere.scope["client"] = ("127.0.0.2", 50000)  # another address has a cap of its own
    assert (await elsewhere.connect())[0]
    assert (await elsewhere.receive_json_from())["type"] == "connection"

    await first.disconnect()
    for _ in range(100):
        if hub.per_address["127.0.0.1"] == 1:
            break
        await asyncio.sleep(0.01)
    again = await connect()  # the freed place is taken again
    assert hub.per_address == {"127.0.0.1": 2, "127.0.0.2": 1}
    for communicator in (second, elsewhere, again):
        await communicator.disconnect()
