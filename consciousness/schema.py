"""The OpenAPI schema's generator: drf-spectacular's, with the error answers every operation can give."""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse

from consciousness.rest import ErrorSerializer

_ERRORS = {
    "400": "The request is malformed: a bad body, field, filter or query parameter (named in `fields`).",
    "404": "No such object or path.",
    "405": "Method not allowed here.",
    "413": "The body is larger than the server accepts.",
    "415": "Send application/json.",
    "500": "An unexpected server error.",
    "503": "The database cannot take the write now (locked, out of space, read-only): retry after `Retry-After`.",
}


class DawnAutoSchema(AutoSchema):
    """drf-spectacular's schema, with the error responses every operation can give, in their one shape."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        codes = ["400", "404", "405", "500"]
        if self.method in ("POST", "PUT", "PATCH"):
            codes += ["413", "415", "503"]
        for code in codes:
            if code not in responses:
                described = OpenApiResponse(ErrorSerializer, description=_ERRORS[code])
                responses[code] = self._get_response_for_code(described, code, direction=direction)
        return responses
