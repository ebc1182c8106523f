"""The /ws protocol through the real ASGI app: msgpack, resume with no gap or duplicate, history, topics, errors."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid

import msgpack
import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from consciousness import consumers, frames, replay, services
from consciousness.consumers import EngineStreamConsumer
from consciousness.frames import Frame, tick_message
from consciousness.groups import STREAM_EVENT, STREAM_GROUP, STREAM_TICK
from consciousness.hub import stream_hub
from consciousness.inbound import HISTORY_CAP, MODELS
from dawn_site.asgi import application
from tests.conftest import local_browser
from tests.consciousness.test_stream import TICK, clean_layer  # noqa: F401  (the same autouse fixture)

pytestmark = [pytest.mark.asyncio, pytest.mark.both_shapes, pytest.mark.usefixtures("open_writes")]

EPOCH = str(uuid.UUID(int=7))


def tick(n: int) -> dict:
    return {**TICK, "tick_number": n, "timestamp": 1700000000.0 + n / 10}


async def publish(n: int, epoch: str = EPOCH) -> None:
    await get_channel_layer().group_send(
        STREAM_GROUP, {"type": STREAM_TICK, "message": tick_message(tick(n)), "epoch": epoch, "rate": 10.0}
    )


async def publish_until_heard(numbers, epoch: str = EPOCH) -> None:
    """Publish ticks and wait until this process's hub has received the last."""
    hub = stream_hub()
    await hub.start()
    for n in numbers:
        await publish(n, epoch)
    for _ in range(500):
        if hub.latest_tick and hub.latest_tick["tick_number"] == numbers[-1]:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the hub never heard the ticks")


class Socket:
    """A WebsocketCommunicator that decodes JSON or msgpack frames alike."""

    def __init__(self, path: str = "/ws", msgpack_protocol: bool = False) -> None:
        subprotocols = [frames.SUBPROTOCOL_MSGPACK] if msgpack_protocol else None
        self.comm = local_browser(WebsocketCommunicator(application, path, subprotocols=subprotocols))
        self.binary = msgpack_protocol

    async def open(self) -> dict:
        connected, subprotocol = await self.comm.connect()
        assert connected
        assert subprotocol == (frames.SUBPROTOCOL_MSGPACK if self.binary else None)
        hello = await self.next()
        assert hello["type"] == "connection"
        return hello

    async def next(self, timeout: float = 3) -> dict:
        output = await self.comm.receive_output(timeout)
        assert output["type"] == "websocket.send", output
        if self.binary:
            assert output.get("bytes") is not None and output.get("text") is None
            return msgpack.unpackb(output["bytes"], raw=False)
        return json.loads(output["text"])

    async def until(self, kind: str, timeout: float = 3) -> dict:
        while True:
            message = await self.next(timeout)
            if message["type"] == kind:
                return message

    async def ticks(self, count: int) -> list[int]:
        return [(await self.until("tick"))["data"]["tick_number"] for _ in range(count)]

    async def send(self, message: dict) -> None:
        await self.comm.send_to(text_data=json.dumps(message))

    async def close(self) -> None:
        await self.comm.disconnect()


async def test_msgpack_clients_get_binary_frames_that_decode_to_the_same_ticks_as_json():
    text, binary = Socket(), Socket(msgpack_protocol=True)
    hello = await binary.open()
    assert hello["data"]["protocol"] == "msgpack"
    assert (await text.open())["data"]["protocol"] == "json"
    await publish_until_heard([1, 2, 3])
    got_text = [(await text.until("tick"))["data"] for _ in range(3)]
    got_binary = [(await binary.until("tick"))["data"] for _ in range(3)]
    assert got_text == got_binary == [tick(1), tick(2), tick(3)]
    # a msgpack client may also send msgpack
    await binary.comm.send_to(bytes_data=msgpack.packb({"type": "ping", "data": [1, 2], "ref": "p"}))
    pong = await binary.until("pong")
    assert pong["data"]["echo"] == [1, 2] and pong["data"]["ref"] == "p"
    await text.close()
    await binary.close()


async def test_each_message_is_encoded_once_per_protocol_in_use(monkeypatch):
    calls = {"json": 0, "msgpack": 0}
    real_json, real_msgpack = frames.encode_json, frames.encode_msgpack

    def count(kind, real):
        def wrapped(message):
            calls[kind] += 1
            return real(message)

        return wrapped

    monkeypatch.setattr(frames, "encode_json", count("json", real_json))
    monkeypatch.setattr(frames, "encode_msgpack", count("msgpack", real_msgpack))
    frame = Frame(tick_message(tick(1)))
    sent = [frame.asgi_for(protocol) for protocol in ["json", "msgpack"] * 20]
    assert calls == {"json": 1, "msgpack": 1}
    assert all(s is sent[0] for s in sent[::2]) and all(s is sent[1] for s in sent[1::2])


async def test_connection_message_says_protocol_rate_clients_scope_topics_and_null_tick_before_the_first():
    socket = Socket()
    hello = (await socket.open())["data"]
    assert hello["tick"] is None and hello["epoch"] is None
    assert hello["tick_rate"] == 10 and hello["protocol"] == "json"
    assert hello["clients_scope"] in ("deployment", "process") and hello["clients"] == 1
    assert hello["topics"] == sorted(frames.TOPICS)
    await socket.close()


async def test_resume_from_the_ring_sends_every_missed_tick_once_then_goes_live():
    await publish_until_heard(list(range(1, 11)))
    socket = Socket()
    await socket.open()
    await socket.send({"type": "resume", "epoch": EPOCH, "since": 4, "ref": 9})
    resumed = await socket.until("resumed")
    assert resumed["data"] == {
        "epoch": EPOCH, "since": 4, "from": 5, "until": 10, "count": 6, "truncated": False, "ref": 9,
    }
    assert await socket.ticks(6) == [5, 6, 7, 8, 9, 10]
    await publish(11)
    assert await socket.ticks(1) == [11]
    await socket.close()


async def test_resume_in_the_url_needs_no_message():
    await publish_until_heard(list(range(1, 6)))
    socket = Socket(f"/ws?epoch={EPOCH}&since=2")
    await socket.open()
    assert (await socket.until("resumed"))["data"]["count"] == 3
    assert await socket.ticks(3) == [3, 4, 5]
    await socket.close()


async def test_resume_with_a_wrong_epoch_fails_whole_and_carries_a_fresh_snapshot():
    await publish_until_heard(list(range(1, 6)))
    socket = Socket()
    await socket.open()
    await socket.send({"type": "resume", "epoch": "another-run", "since": 2, "ref": "r"})
    failed = await socket.next()
    assert failed["type"] == "resume_failed"
    assert failed["data"]["reason"] == "epoch" and failed["data"]["ref"] == "r"
    assert failed["data"]["epoch"] == EPOCH and failed["data"]["tick"] == tick(5)
    await publish(6)
    assert await socket.ticks(1) == [6]  # no replay: straight on with the live stream
    await socket.close()


@pytest.mark.django_db(transaction=True)
async def test_resume_reads_the_database_below_the_ring_and_holds_live_ticks_at_the_seam(monkeypatch):
    await persist_async(range(1, 31))
    await publish_until_heard(list(range(21, 41)))  # this process heard only 21..40
    real = replay._ticks_between

    async def slow_read(**kwargs):
        # ticks arrive while the database is being read: they must follow the replay, not cut into it
        await publish_until_heard([41, 42])
        return await real(**kwargs)

    monkeypatch.setattr(replay, "_ticks_between", slow_read)
    socket = Socket()
    await socket.open()
    await socket.send({"type": "resume", "epoch": EPOCH, "since": 5})
    resumed = (await socket.until("resumed"))["data"]
    assert (resumed["from"], resumed["until"], resumed["count"]) == (6, 40, 35)
    assert await socket.ticks(37) == list(range(6, 43))
    await socket.close()


@pytest.mark.django_db(transaction=True)
async def test_a_resume_at_a_worker_that_has_heard_no_tick_yet_waits_for_the_stream_and_leaves_no_gap():
    now = time.time()
    await persist_async(range(1, 31), at=now)  # the engine ticks (its history is fresh)...
    socket = Socket()
    await socket.open()  # ...but this process, a worker just started, has heard nothing of it yet

    async def engine() -> None:
        await asyncio.sleep(0.3)
        await publish_until_heard([33, 34, 35])  # the stream runs ahead of the history by a flush
        await asyncio.sleep(0.3)
        await persist_async(range(31, 36), at=now)  # the next flush

    ticking = asyncio.create_task(engine())
    await socket.send({"type": "resume", "epoch": EPOCH, "since": 5})
    resumed = (await socket.until("resumed"))["data"]
    assert resumed["from"] == 6 and resumed["until"] >= 33, resumed
    assert await socket.ticks(30) == list(range(6, 36))  # not 6..30 and then 33..35
    await ticking
    await socket.close()


@pytest.mark.django_db(transaction=True)
async def test_resume_past_pruned_history_fails_and_far_behind_gets_the_newest_ticks():
    await persist_async(range(100, 201))  # ticks before 100 were pruned
    socket = Socket()
    await socket.open()
    await socket.send({"type": "resume", "epoch": EPOCH, "since": 10, "ref": 1})
    failed = (await socket.until("resume_failed"))["data"]
    assert failed["reason"] == "pruned" and failed["tick"]["tick_number"] == 200 and failed["ref"] == 1
    await persist_async(range(201, 100 + HISTORY_CAP + 50))
    last = 100 + HISTORY_CAP + 49
    await socket.send({"type": "resume", "epoch": EPOCH, "since": 120, "ref": 2})
    resumed = (await socket.until("resumed"))["data"]
    assert resumed["truncated"] and resumed["count"] == HISTORY_CAP and resumed["from"] == last - HISTORY_CAP + 1
    assert (await socket.ticks(1)) == [last - HISTORY_CAP + 1]
    await socket.close()


@pytest.mark.django_db(transaction=True)
async def test_get_history_by_count_and_by_range_oldest_first_and_capped():
    await persist_async(range(1, 21))
    await publish_until_heard(list(range(15, 26)))
    socket = Socket()
    await socket.open()
    await socket.send({"type": "get_history", "count": 10, "ref": "c"})
    history = (await socket.until("history"))["data"]
    assert [t["tick_number"] for t in history["ticks"]] == list(range(16, 26)) and history["ref"] == "c"
    await socket.send({"type": "get_history", "since": 3, "until": 18})
    history = (await socket.until("history"))["data"]
    assert [t["tick_number"] for t in history["ticks"]] == list(range(3, 19)) and not history["truncated"]
    assert history["ticks"][0] == tick(3)
    await socket.send({"type": "get_history", "since": 0, "until": 10**9})
    history = (await socket.until("history"))["data"]
    assert history["ticks"][-1]["tick_number"] == 25
    await socket.close()


def persist(numbers, at: float | None = None) -> None:
    """A flush of these ticks (stamped as made a tenth of a second apart up to `at`, if given)."""
    ticks = [tick(n) for n in numbers]
    if at is not None:
        ticks = [{**t, "timestamp": at - (ticks[-1]["tick_number"] - t["tick_number"]) / 10} for t in ticks]
    services.history_flush(ticks=ticks, snapshot={}, epoch=uuid.UUID(EPOCH), seed=1, tick_number=ticks[-1]["tick_number"])


persist_async = database_sync_to_async(persist)  # closes its connection, so the test database can be dropped


async def test_topics_and_throttle_choose_what_the_stream_sends():
    socket = Socket()
    await socket.open()
    await socket.send({"type": "unsubscribe", "topics": ["processes"], "ref": "u"})
    assert (await socket.until("subscribed"))["data"] == {"topics": ["control", "process_output", "ticks"], "ref": "u"}
    await socket.send({"type": "throttle", "every": 3, "ref": "t"})
    assert (await socket.until("throttled"))["data"] == {"every": 3, "ref": "t"}
    layer = get_channel_layer()
    run = {"id": 1, "process_id": "p", "output": None}
    await layer.group_send(STREAM_GROUP, {"type": STREAM_EVENT, "message": frames.process_message(run)})
    await layer.group_send(STREAM_GROUP, {"type": STREAM_EVENT, "message": frames.process_output_message(process_id="p", line="x")})
    await publish_until_heard(list(range(1, 10)))
    received = [await socket.next() for _ in range(4)]
    assert [m["type"] for m in received] == ["process_output", "tick", "tick", "tick"]
    assert [m["data"]["tick_number"] for m in received[1:]] == [3, 6, 9]
    await socket.close()


async def test_process_messages_carry_the_run_without_its_picture():
    run = {"id": 12, "process_id": "p", "output": {"analysis": "a", "visualization": "iVBORw0KGgo="}}
    data = frames.process_message(run)["data"]
    assert "visualization" not in data["output"] and data["output"]["analysis"] == "a"
    assert data["visualization_url"] == "/api/runs/12/visualization.png"
    assert frames.process_message({"id": 1, "output": None})["data"]["visualization_url"] is None


# One row per way a message can be wrong, covering every message type: each must answer a coded error
# carrying its ref, and the same socket must go on receiving ticks.
VALID = {
    "ping": {"data": 1},
    "heartbeat": {},
    "get_state": {},
    "stimulus": {"kind": "excite", "intensity": 0.5},
    "control": {"action": "pause"},
    "resume": {"epoch": EPOCH, "since": 1},
    "get_history": {"count": 5},
    "subscribe": {"topics": ["ticks"]},
    "unsubscribe": {"topics": ["control"]},
    "throttle": {"every": 2},
}
BAD_FIELDS = {
    "ping": [{"extra": 1}],
    "heartbeat": [{"tick": 1}],
    "get_state": [{"data": 1}],
    "stimulus": [{"kind": "tickle"}, {"intensity": 7}, {"intensity": "0.5"}, {"kind": None}],
    "control": [
        {"action": "jump"}, {"action": "step"}, {"action": "step", "ticks": 0}, {"action": "step", "ticks": 1001},
        {"action": "step", "ticks": 2.5}, {"action": "rate", "rate": 0}, {"action": "rate", "rate": 1e3 + 1},
        {"action": "rate", "rate": "5"}, {"action": "pause", "ticks": 3}, {"action": "resume", "rate": 10},
    ],
    "resume": [{"since": -1}, {"since": "x"}, {"epoch": ""}, {"epoch": 5}],
    "get_history": [{"count": 0}, {"count": HISTORY_CAP + 1}, {"since": 1}, {"until": 3}],
    "subscribe": [{"topics": []}, {"topics": ["weather"]}, {"topics": "ticks"}],
    "unsubscribe": [{"topics": ["weather"]}],
    "throttle": [{"every": 0}, {"every": 1.5}, {"every": True}],
}
BAD_FIELD_CASES = [(kind, {**VALID[kind], **bad}) for kind, rows in BAD_FIELDS.items() for bad in rows]
def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


# (frame, code, the ref the error can carry: none when the frame cannot be decoded at all)
RAW_CASES = [
    ('{"type":"ping","ref":"r","data":NaN}', "non_finite", None),
    ('{"type":"ping","ref":"r","data":Infinity}', "non_finite", None),
    ('{"type":"ping","ref":"r","data":1e309}', "non_finite", "r"),
    ('{"type":"ping","ref":"r","data":' + "[" * 1000 + "]" * 1000 + "}", "too_deep", None),
    ('{"type":"ping","ref":"r","data":' + "[" * 20 + "]" * 20 + "}", "too_deep", "r"),
    ('{"type":"ping","ref":"r","data":' + '"' + "x" * 17000 + '"}', "too_large", None),
    ('{"type":"ping","ref":"r","data":123456789012345678901234567890}', "unencodable", "r"),
    ('{"type":"ping","ref":"r"', "malformed", None),
    ('{"type":"teleport","ref":"r"}', "unknown_type", "r"),
    ('{"type":["ping"],"ref":"r"}', "invalid_message", "r"),
]
MSGPACK_CASES = [
    (msgpack.packb({"type": "ping", "ref": "r", "data": b"\x00bytes"}), "unencodable", "r"),
    (msgpack.packb({"type": "ping", "ref": "r", "data": {1: "int key"}}), "unencodable", "r"),
    (msgpack.packb({"type": "ping", "ref": "r", "data": msgpack.ExtType(5, b"x")}), "unencodable", "r"),
    (msgpack.packb({"type": "ping", "ref": "r", "data": float("nan")}), "non_finite", "r"),
    (msgpack.packb({"type": "ping", "ref": "r", "data": nested(20)}), "too_deep", "r"),
    (msgpack.packb({"type": "stimulus", "ref": "r", "kind": "excite", "intensity": 0.5}) + b"\xc1", "malformed", None),
]


async def test_the_table_covers_every_message_type():
    assert set(VALID) == set(BAD_FIELDS) == set(MODELS) == set(EngineStreamConsumer._handlers)


async def expect_error_then_ticks(socket: Socket, code: str, ref) -> None:
    error = await socket.until("error")
    assert error["data"]["code"] == code, error
    assert error["data"]["ref"] == ref and error["data"]["message"]
    assert code in frames.ERROR_CODES
    n = (stream_hub().latest_tick or {"tick_number": 0})["tick_number"] + 1
    await publish(n)
    assert (await socket.until("tick"))["data"]["tick_number"] == n


@pytest.mark.parametrize("kind, message", BAD_FIELD_CASES, ids=[f"{k}-{i}" for i, (k, _m) in enumerate(BAD_FIELD_CASES)])
async def test_every_bad_field_answers_invalid_field_with_its_ref_and_the_socket_lives(kind, message):
    socket = Socket()
    await socket.open()
    await socket.send({"type": kind, "ref": f"ref-{kind}", **message})
    await expect_error_then_ticks(socket, "invalid_field", f"ref-{kind}")
    await socket.close()


@pytest.mark.parametrize("raw, code, ref", RAW_CASES, ids=[c for _r, c, _ref in RAW_CASES])
async def test_bad_text_frames_answer_a_coded_error_and_the_socket_lives(raw, code, ref):
    socket = Socket()
    await socket.open()
    await socket.comm.send_to(text_data=raw)
    await expect_error_then_ticks(socket, code, ref)
    await socket.close()


@pytest.mark.parametrize("raw, code, ref", MSGPACK_CASES, ids=[c for _r, c, _ref in MSGPACK_CASES])
async def test_bad_msgpack_frames_answer_a_coded_error_and_the_socket_lives(raw, code, ref):
    socket = Socket(msgpack_protocol=True)
    await socket.open()
    await socket.comm.send_to(bytes_data=raw)
    await expect_error_then_ticks(socket, code, ref)
    await socket.close()


async def test_a_bad_ref_is_refused_and_an_error_cannot_echo_it():
    socket = Socket()
    await socket.open()
    await socket.send({"type": "ping", "ref": {"a": 1}})
    await expect_error_then_ticks(socket, "invalid_field", None)
    await socket.close()


async def test_a_failing_handler_answers_internal_error_logs_once_and_the_socket_lives(monkeypatch, caplog):
    async def broken(self, request):
        raise RuntimeError("boom")

    monkeypatch.setitem(EngineStreamConsumer._handlers, "heartbeat", broken)
    socket = Socket()
    await socket.open()
    with caplog.at_level(logging.ERROR, logger="consciousness.consumers"):
        for i in range(3):
            await socket.send({"type": "heartbeat", "ref": i})
            error = await socket.until("error")
            assert error["data"] == {"code": "internal_error", "message": error["data"]["message"], "ref": i}
    assert len([r for r in caplog.records if "failed to serve" in r.getMessage()]) == 1
    await publish_until_heard([500])
    assert (await socket.until("tick"))["data"]["tick_number"] == 500
    await socket.close()


async def test_a_stimulus_the_engine_cannot_receive_answers_unavailable(monkeypatch):
    async def down(layer, group, message):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(consumers, "_group_send", down)
    socket = Socket()
    await socket.open()
    await socket.send({"type": "stimulus", "kind": "calm", "intensity": 0.2, "ref": "s"})
    await expect_error_then_ticks(socket, "unavailable", "s")
    await socket.close()
