"""What clients may send on /ws: one typed model per message type, and the decoder in front of them.

`decode` turns a frame (JSON text or msgpack binary) into a plain value, `check_value` enforces the limits
(nesting depth, finite numbers, values and text that JSON and msgpack can both encode), and `parse`
validates it against the model of its type; each raises ClientError with a stable code.
"""

from __future__ import annotations

import json
import math
import re
from typing import Annotated, Any, Literal, Union

import msgpack
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError, model_validator

from consciousness.engine import Stimulus
from consciousness.frames import TOPICS
from consciousness.loop import ACTIONS, Command, CommandInvalid

MAX_MESSAGE_BYTES = 16_384
MAX_DEPTH = 16
MAX_REF_CHARS = 100
HISTORY_CAP = 3000  # ticks per resume or history answer: five minutes at 10 Hz
_INT_RANGE = (-(2**63), 2**64 - 1)  # what msgpack can carry
# JSON's \ud800 escapes decode to lone surrogates, which UTF-8 (msgpack, a socket's text frames) cannot carry
_SURROGATE = re.compile("[\ud800-\udfff]")
_NOT_UNICODE = "text must be Unicode: a lone surrogate (such as \\ud800) has no UTF-8 form"


class ClientError(ValueError):
    """A client message that cannot be served: answered with a coded error frame, the socket stays open."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _reject_constant(name: str) -> None:
    raise ClientError("non_finite", f"{name} is not a number DAWN accepts")


def decode(text: str | None, data: bytes | None) -> Any:
    """The value a frame carries: JSON for text frames, msgpack for binary ones (size checked; see check_value)."""
    size = len(data) if text is None else len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_MESSAGE_BYTES:
        raise ClientError("too_large", f"message of {size} bytes; the limit is {MAX_MESSAGE_BYTES}")
    try:
        if text is not None:
            value = json.loads(text, parse_constant=_reject_constant)
        else:
            value = msgpack.unpackb(data or b"", raw=False, strict_map_key=False, timestamp=0)
    except ClientError:
        raise
    except (RecursionError, msgpack.StackError):
        raise ClientError("too_deep", f"message nests deeper than {MAX_DEPTH} levels") from None
    except Exception as exc:  # json.JSONDecodeError, msgpack's ExtraData/FormatError/ValueError...
        kind = "JSON" if text is not None else "msgpack"
        raise ClientError("malformed", f"not valid {kind}: {exc}") from None
    return value


def check_value(value: Any) -> None:
    """Raise ClientError unless `value` is finite, shallow enough, and encodable as JSON and msgpack."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > MAX_DEPTH:
                raise ClientError("too_deep", f"message nests deeper than {MAX_DEPTH} levels")
            if isinstance(item, dict):
                for key, child in item.items():
                    if not isinstance(key, str):
                        raise ClientError("unencodable", f"object keys must be strings, got {type(key).__name__}")
                    if _SURROGATE.search(key):
                        raise ClientError("unencodable", _NOT_UNICODE)
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise ClientError("non_finite", "numbers must be finite (no NaN, Infinity or overflow like 1e309)")
        elif isinstance(item, str):
            if _SURROGATE.search(item):
                raise ClientError("unencodable", _NOT_UNICODE)
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if not _INT_RANGE[0] <= item <= _INT_RANGE[1]:
                raise ClientError("unencodable", "integers must fit in 64 bits")
        else:
            raise ClientError("unencodable", f"a {type(item).__name__} value has no JSON form")


Ref = Union[
    Annotated[StrictStr, Field(max_length=MAX_REF_CHARS)], Annotated[StrictInt, Field(ge=-(2**53), le=2**53)], None
]
Topic = Literal[TOPICS]  # type: ignore[valid-type]
TickNumber = Annotated[StrictInt, Field(ge=0, le=2**53)]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    ref: Ref = None


class Ping(Request):
    type: Literal["ping"]
    data: Any = None


class Heartbeat(Request):
    type: Literal["heartbeat"]


class GetState(Request):
    type: Literal["get_state"]


class StimulusRequest(Request):
    type: Literal["stimulus"]
    kind: StrictStr
    intensity: Annotated[float, Field(strict=True, allow_inf_nan=False)]

    @model_validator(mode="after")
    def _engine_accepts(self) -> StimulusRequest:
        Stimulus(kind=self.kind, intensity=self.intensity)  # the engine's own rules, defined once there
        return self

    def stimulus(self) -> Stimulus:
        return Stimulus(kind=self.kind, intensity=self.intensity)


class ControlRequest(Request):
    type: Literal["control"]
    action: Literal[ACTIONS]  # type: ignore[valid-type]
    ticks: StrictInt | None = None
    rate: Annotated[float, Field(strict=True, allow_inf_nan=False)] | None = None

    @model_validator(mode="after")
    def _loop_accepts(self) -> ControlRequest:
        try:
            self.command()  # the loop's own rules, defined once there
        except CommandInvalid as exc:
            raise ValueError(str(exc)) from None
        return self

    def command(self) -> Command:
        return Command(action=self.action, ticks=self.ticks, rate=self.rate)


class Resume(Request):
    type: Literal["resume"]
    epoch: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    since: TickNumber


class GetHistory(Request):
    type: Literal["get_history"]
    count: Annotated[StrictInt, Field(ge=1, le=HISTORY_CAP)] | None = None
    since: TickNumber | None = None
    until: TickNumber | None = None

    @model_validator(mode="after")
    def _one_form(self) -> GetHistory:
        if (self.count is None) == (self.since is None):
            raise ValueError('send either "count", or "since" with an optional "until"')
        if self.count is not None and self.until is not None:
            raise ValueError('"until" goes with "since", not with "count"')
        if self.since is not None and self.until is not None and self.until < self.since:
            raise ValueError('"until" must not be below "since"')
        return self


class Subscribe(Request):
    type: Literal["subscribe", "unsubscribe"]
    topics: Annotated[list[Topic], Field(min_length=1, max_length=len(TOPICS))]


class Throttle(Request):
    type: Literal["throttle"]
    every: Annotated[StrictInt, Field(ge=1, le=600)]


MODELS: dict[str, type[Request]] = {
    "ping": Ping,
    "heartbeat": Heartbeat,
    "get_state": GetState,
    "stimulus": StimulusRequest,
    "control": ControlRequest,
    "resume": Resume,
    "get_history": GetHistory,
    "subscribe": Subscribe,
    "unsubscribe": Subscribe,
    "throttle": Throttle,
}


def ref_of(message: Any) -> Any:
    """The message's ref if it is a valid one (so that even a rejected message's error can carry it)."""
    ref = message.get("ref") if isinstance(message, dict) else None
    try:
        check_value(ref)  # echoed in every answer: it must encode in both protocols
        return Request(ref=ref).ref
    except (ClientError, ValidationError):
        return None


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False)[:3]:
        where = ".".join(str(p) for p in error["loc"]) or "message"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def parse(message: Any) -> Request:
    """The typed request for a decoded message, or ClientError naming what is wrong."""
    check_value(message)
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ClientError("invalid_message", 'a message must be an object with a string "type"')
    model = MODELS.get(message["type"])
    if model is None:
        known = ", ".join(sorted(MODELS))
        raise ClientError("unknown_type", f"unknown message type {message['type'][:40]!r}; known: {known}")
    try:
        return model.model_validate(message)
    except ValidationError as exc:
        raise ClientError("invalid_field", f"invalid {message['type']}: {_describe(exc)}") from None
