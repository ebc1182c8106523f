"""REST building blocks both apps use: the error body, epoch times, the JSON parser (lists: listing.py).

The API's one time format is epoch seconds (a JSON number, UTC), as the Tick Data Format's `timestamp`:
bodies carry it, and time filters take it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import APIException, ParseError, ValidationError
from rest_framework.parsers import JSONParser

# a row's id in a URL: anything else matches no route (and so is never redirected to a slashed sibling)
ID_PATTERN = "[0-9]+"
MAX_JSON_DEPTH = 32  # far beyond any DAWN body; stops bodies that would exhaust the stack later on


class ErrorSerializer(serializers.Serializer):
    """Every 4xx and 5xx body of /api/ and /health/."""

    error = serializers.CharField(help_text="What went wrong, in words.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="For 400s: each offending field (or query parameter) and what is wrong with it.",
    )
    path = serializers.CharField(required=False, help_text="For 404s: the path that matched nothing.")


@extend_schema_field({"type": "number", "format": "double", "description": "Epoch seconds (UTC)."})
class EpochField(serializers.Field):
    """A datetime as epoch seconds (float), the API's one time format."""

    def to_representation(self, value: datetime | None) -> float | None:
        return value.timestamp() if value is not None else None

    def to_internal_value(self, data: object) -> datetime:
        return epoch_parse(data)


def epoch_parse(value: object) -> datetime:
    """Epoch seconds (a number, or its text in a query string) as an aware UTC datetime."""
    try:
        seconds = float(value)  # type: ignore[arg-type]
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        raise ValidationError(f"{value!r} is not a time: send epoch seconds, e.g. 1764104400.5") from None


class PayloadTooLarge(APIException):
    status_code = 413
    default_detail = "request body too large"
    default_code = "payload_too_large"


class DawnJSONParser(JSONParser):
    """JSON bodies only, bounded in size and nesting, never NaN or Infinity."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge(f"request body larger than {limit} bytes")
        try:
            data = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
        except RecursionError:
            raise ParseError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        if json_depth(data) > MAX_JSON_DEPTH:
            raise ParseError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        return data


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def json_depth(value: object) -> int:
    """The nesting depth of a parsed JSON value (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth + 1)
        stack.extend((child, depth + 1) for child in children)
    return deepest
