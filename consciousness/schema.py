"""The OpenAPI schema's generator: drf-spectacular's, with the error answers every operation can give."""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework.permissions import SAFE_METHODS

from consciousness.access import WritePermission
from consciousness.rest import ErrorSerializer

_ERRORS = {
    "400": "The request is malformed: a bad body, field, filter or query parameter (named in `fields`).",
    "403": (
        "Credentials that are not valid (an unknown token); for a write, no signed-in user holding its "
        "permission (see the README: who may write)."
    ),
    "404": "No such object or path.",
    "405": "Method not allowed here.",
    "413": "The body is larger than the server accepts.",
    "415": "Send application/json.",
    "429": "Too many writes from this user or address, or too many runs waiting: retry after `Retry-After`.",
    "500": "An unexpected server error.",
    "503": "The database cannot take the write now (locked, out of space, read-only): retry after `Retry-After`.",
}
_READ_ERRORS = ["400", "403", "404", "405", "500"]
_WRITE_ERRORS = [*_READ_ERRORS, "413", "415", "429", "503"]
_RETRY_AFTER = {
    "Retry-After": {
        "schema": {"type": "integer"}, "required": True, "description": "Seconds to wait before retrying."
    }
}


def endpoints_without_slashed_twins(endpoints, **_kwargs):
    """drf-spectacular preprocessing hook: a route also served with a trailing slash is documented once."""
    plain = {(path, method) for path, _regex, method, _callback in endpoints}
    return [e for e in endpoints if not (e[0].endswith("/") and (e[0][:-1], e[2]) in plain)]


class DawnAutoSchema(AutoSchema):
    """drf-spectacular's schema, with the error responses every operation can give, in their one shape."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code in _READ_ERRORS if self.method in SAFE_METHODS else _WRITE_ERRORS:
            if code not in responses:
                described = OpenApiResponse(ErrorSerializer, description=_ERRORS[code])
                responses[code] = self._get_response_for_code(described, code, direction=direction)
        if "429" in responses:
            responses["429"].setdefault("headers", {}).update(_RETRY_AFTER)
        return responses

    def get_auth(self):
        auths = super().get_auth()
        # reads are open to anyone (WritePermission guards writes only): no credentials is a valid choice
        guarded = any(isinstance(p, WritePermission) for p in self.view.get_permissions())
        if self.method in SAFE_METHODS and guarded:
            auths.append({})
        return auths
