"""hypothesis against what clients send on /ws: the decoder and the message models, then a real consumer.

Whatever a frame holds (any JSON value, NaN and Infinity, huge integers, lone surrogates, deep nesting,
arbitrary bytes, msgpack with bytes, extension types or non-string keys), decoding and parsing it either
gives a typed request or raises ClientError with a documented code, and whatever comes back (the answer,
or the error with the message's ref) can be encoded in both protocols.
"""

from __future__ import annotations

import json

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consciousness import frames, inbound
from consciousness.engine import STIMULUS_KINDS
from consciousness.frames import TOPICS
from consciousness.inbound import HISTORY_CAP, MAX_MESSAGE_BYTES, MODELS, ClientError
from tests.consciousness.test_protocol import Socket
from tests.consciousness.test_stream import clean_layer  # noqa: F401  (the same autouse fixture)

# every code point, lone surrogates too (a JSON text frame can carry them as \ud800 escapes), and the rare
# ones often enough that a few hundred examples meet them
TRICKY = st.sampled_from(["\ud800", "\udfff", "\x00", "\u2028", "\ufeff", "\U0001f600", '"', "\\"])
# (joined from a list: st.text itself keeps lone surrogates out, whatever its alphabet)
ANY_TEXT = st.lists(st.characters(codec=None, exclude_categories=()) | TRICKY, max_size=40).map("".join)
FIELDS = sorted({name for model in MODELS.values() for name in model.model_fields} | {"extra"})

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | ANY_TEXT
    | st.sampled_from(["ping", "ticks", "excite", 0.5, 1, 2**53, -1, ""])
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT, inner, max_size=4),
    max_leaves=20,
)
KINDS = sorted(MODELS)
# a value each model accepts for the field (a field missing here gets any value), so that many messages
# are served and their answers, echoes and refs included, must encode
VALID = {
    "ref": st.none() | ANY_TEXT | st.integers(-(2**53), 2**53),
    "data": json_values,
    "kind": st.sampled_from(STIMULUS_KINDS),
    "intensity": st.floats(0, 1),
    "epoch": ANY_TEXT.filter(bool),
    "since": st.integers(0, 2**53),
    "until": st.integers(0, 2**53),
    "count": st.integers(1, HISTORY_CAP),
    "topics": st.lists(st.sampled_from(TOPICS), min_size=1, max_size=len(TOPICS)),
    "every": st.integers(1, 600),
}


@st.composite
def message_values(draw, values=None) -> object:
    """Mostly a known type with its own fields, each valid or (one in four) of any value; else anything."""
    values = json_values if values is None else values
    kind = draw(st.sampled_from(KINDS) | ANY_TEXT | scalars) if draw(st.integers(0, 4)) == 0 else draw(
        st.sampled_from(KINDS)
    )
    own = [n for n in MODELS[kind].model_fields if n != "type"] if kind in MODELS else FIELDS
    message = {"type": kind} if draw(st.integers(0, 9)) else {}
    for name in own:
        if draw(st.booleans()):
            wild = draw(st.integers(0, 3)) == 0 or name not in VALID
            message[name] = draw(values if wild else VALID[name])
    if draw(st.integers(0, 5)) == 0:
        message[draw(st.sampled_from(FIELDS) | ANY_TEXT)] = draw(values)
    return message


# msgpack can also carry what JSON cannot: bytes, extension types, integer keys, timestamps
msgpack_values = st.recursive(
    scalars.filter(lambda v: not isinstance(v, int) or -(2**63) <= v < 2**64)
    | st.binary(max_size=8)
    | st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=4))
    | st.builds(msgpack.Timestamp, st.integers(0, 2**32), st.integers(0, 999_999_999)),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.integers() | st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


def nested(depth: int, leaf: object = 0) -> object:
    value = leaf
    for i in range(depth):
        value = [value] if i % 2 else {"a": value}
    return value


def as_json(value: object) -> str:
    return json.dumps(value, allow_nan=True)  # NaN, Infinity and \ud800 escapes, as json.loads accepts them


def as_msgpack(value: object) -> bytes | None:
    """`value` packed, or None where msgpack cannot carry it (huge integers, lone surrogates)."""
    try:
        return msgpack.packb(value)
    except (OverflowError, UnicodeEncodeError, TypeError, ValueError):
        return None


def outcome(text: str | None, data: bytes | None) -> tuple[str, object]:
    """("ok", request) or ("error", code), checking that what goes back to the client encodes."""
    value = None
    try:
        value = inbound.decode(text, data)
        request = inbound.parse(value)
    except ClientError as exc:
        assert exc.code in frames.ERROR_CODES, exc.code
        answer = frames.error_message(exc.code, str(exc), ref=inbound.ref_of(value))
        frames.encode_json(answer), frames.encode_msgpack(answer)
        return "error", exc.code
    assert isinstance(request, MODELS[value["type"]])
    echo = request.model_dump()
    frames.encode_json(echo), frames.encode_msgpack(echo)
    return "ok", request


# frames a few bytes either side of the size limit (a pattern repeated: drawing 16 KiB byte by byte is slow)
AT_THE_SIZE_LIMIT = st.builds(
    lambda size, pattern: (pattern * MAX_MESSAGE_BYTES)[:size],
    st.integers(MAX_MESSAGE_BYTES - 2, MAX_MESSAGE_BYTES + 2),
    st.binary(min_size=1, max_size=9),
)
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(json_values | message_values())
def test_any_json_value_is_a_request_or_a_coded_error(value):
    outcome(as_json(value), None)
    if (data := as_msgpack(value)) is not None:
        outcome(None, data)


@FUZZ
@given(msgpack_values | message_values(msgpack_values))
def test_any_msgpack_value_is_a_request_or_a_coded_error(value):
    if (data := as_msgpack(value)) is not None:
        outcome(None, data)


@FUZZ
@given(st.binary(max_size=200) | AT_THE_SIZE_LIMIT)
def test_any_bytes_are_a_request_or_a_coded_error(data):
    outcome(None, data)


@FUZZ
@given(ANY_TEXT | st.text(max_size=200))
def test_any_text_is_a_request_or_a_coded_error(text):
    outcome(text, None)


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=5000), st.sampled_from(["[", "{\"a\":"]), st.integers(0, 9))
def test_nesting_at_any_depth_is_too_deep_or_served(depth, opener, leaf):
    closer = "]" if opener == "[" else "}"
    text = '{"type":"ping","ref":"r","data":' + opener * depth + as_json(leaf) + closer * depth + "}"
    result = outcome(text, None)
    if len(text) > MAX_MESSAGE_BYTES:
        assert result == ("error", "too_large")
    elif depth + 1 > inbound.MAX_DEPTH:
        assert result == ("error", "too_deep")
    data = msgpack.packb({"type": "ping", "ref": "r", "data": nested(min(depth, 400))})
    outcome(None, data)


@pytest.mark.parametrize("value", ["\ud800", "a\udfffb", {"\ud800": 1}])
def test_text_that_is_not_unicode_is_unencodable_wherever_it_is(value):
    for message in ({"type": "ping", "data": value}, {"type": "ping", "ref": value}):
        assert outcome(as_json(message), None) == ("error", "unencodable")


# --------------------------------------------------------------------------- through a real consumer

# a frame as a client sends it: text (JSON, or any text), or binary (msgpack, or any bytes)
client_frames = (
    (json_values | message_values()).map(lambda value: (as_json(value), None))
    | message_values(msgpack_values).map(lambda value: (None, as_msgpack(value) or b"\xc1"))  # c1: never valid
    | st.binary(max_size=64).map(lambda data: (None, data))
    | ANY_TEXT.map(lambda text: (text, None))
)
STREAM_TYPES = {"tick", "process", "process_output"}


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
@given(sent=st.lists(client_frames, min_size=1, max_size=20), binary=st.booleans())
async def test_every_frame_a_client_sends_is_answered_and_the_socket_lives(sent, binary):
    socket = Socket(msgpack_protocol=binary)
    await socket.open()
    for text, data in sent:
        # the ASGI message itself: the communicator's send_to refuses an empty frame, which a client can send
        await socket.comm.send_input({"type": "websocket.receive", "text": text, "bytes": data})
        answer = await socket.next()  # a websocket.close instead, or nothing within 3 s, fails here
        while answer["type"] in STREAM_TYPES:
            answer = await socket.next()
        if answer["type"] == "error":  # a coded refusal, never the server failing on the message
            assert answer["data"]["code"] in set(frames.ERROR_CODES) - {"internal_error"}, answer
    await socket.send({"type": "ping", "ref": "still-there"})
    pong = await socket.until("pong")
    assert pong["data"]["ref"] == "still-there"
    await socket.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("binary", [False, True], ids=["json", "msgpack"])
@pytest.mark.parametrize("message", [{"type": "ping", "ref": "\udfff"}, {"type": "ping", "data": ["\ud800"]}])
async def test_a_lone_surrogate_is_refused_on_either_protocol_and_the_socket_lives(binary, message):
    socket = Socket(msgpack_protocol=binary)
    await socket.open()
    await socket.comm.send_to(text_data=as_json(message))  # msgpack cannot carry one: only JSON's escapes can
    error = await socket.until("error")
    assert error["data"]["code"] == "unencodable" and error["data"]["ref"] is None
    await socket.send({"type": "ping", "ref": "still-there"})
    assert (await socket.until("pong"))["data"]["ref"] == "still-there"
    await socket.close()
