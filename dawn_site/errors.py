"""Error answers: JSON on /api/ and /health/ whatever DEBUG says; elsewhere a plain page (the debug page only with DEBUG).

Clients of a real-time API never have to parse an HTML error page, and an error page never shows settings or
paths unless the developer asked for DEBUG.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

import redis.exceptions
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.deprecation import MiddlewareMixin
from rest_framework.views import exception_handler

from consciousness.health import database_fault

logger = logging.getLogger(__name__)

JSON_PREFIXES = ("/api/", "/health/", "/metrics")


def json_path(path: str) -> bool:
    """Paths whose every answer, errors included, is JSON (or, for /metrics, Prometheus text)."""
    return path.startswith(JSON_PREFIXES) or path in ("/api", "/health")


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower()
    except ValueError:
        return "error"


def _unavailable(exc: BaseException) -> str | None:
    """What cannot take the request now, and why ("the database (locked)"), or None for any other error."""
    fault = database_fault(exc)
    if fault is not None:
        return f"the database ({fault})"
    if isinstance(exc, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)):
        return "Redis (unreachable)"  # the write throttles' shared counters, in the scaled shape
    return None


def _unavailable_answer(request: HttpRequest, what: str, *, page: bool) -> HttpResponse:
    """503 with Retry-After: a backing service cannot take the operation now (logged in a line, not a 500)."""
    retry = settings.DATABASE_RETRY_AFTER_S
    logger.warning("%s %s: %s cannot take it now; answered 503", request.method, request.path, what)
    detail = f"{what} cannot take this now: retry after {retry} s"
    if page:
        response = HttpResponse(
            _PLAIN_PAGE.format(code=503, reason="Service Unavailable", detail=detail),
            status=503, content_type="text/html; charset=utf-8",
        )
    else:
        response = JsonResponse({"error": detail}, status=503)
    response["Retry-After"] = str(retry)
    return response


def api_exception_handler(exc, context):
    """DRF's handler, with its bodies in the API's one error shape, a database (or Redis) that cannot take the
    write now as a 503 with Retry-After, and unexpected errors as a JSON 500."""
    what = _unavailable(exc)
    if what is not None:
        return _unavailable_answer(context["request"], what, page=False)
    response = exception_handler(exc, context)
    if response is None:
        logger.exception("unhandled error in %s", context.get("view").__class__.__name__, exc_info=exc)
        return JsonResponse({"error": "internal server error"}, status=500)
    if isinstance(response.data, dict) and "detail" in response.data and len(response.data) == 1:
        response.data = {"error": str(response.data["detail"])}
    elif response.status_code == 400:
        response.data = {"error": "invalid request", "fields": response.data}
    return response


class JsonErrorMiddleware(MiddlewareMixin):
    """On JSON paths: a 413 for an oversized body before anything reads it, and every error page as JSON.
    On every path: a database (or Redis) that cannot take the operation now is a 503 with Retry-After,
    DEBUG or not."""

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        what = _unavailable(exception)
        if what is None:
            return None
        return _unavailable_answer(request, what, page=not json_path(request.path))

    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        if not json_path(request.path):
            return None
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse({"error": "bad Content-Length"}, status=400)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and length > limit:
            return JsonResponse({"error": f"request body larger than {limit} bytes"}, status=413)
        return None

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if response.status_code < 400 or not json_path(request.path):
            return response
        if response.get("Content-Type", "").startswith("application/json") or hasattr(response, "data"):
            return response  # JSON already, or DRF's answer (the browsable API shows its error body as HTML)
        # Django's own error pages (the debug pages with DEBUG on) reach here: answer in the API's shape instead
        body: dict = {"error": _reason(response.status_code)}
        if response.status_code == 404:
            body["path"] = request.path
        replacement = JsonResponse(body, status=response.status_code)
        for header in ("Allow", "Retry-After"):
            if header in response:
                replacement[header] = response[header]
        return replacement


_PLAIN_PAGE = "<!doctype html><title>{code} {reason}</title><h1>{code} {reason}</h1><p>{detail}</p>"


def _plain(request: HttpRequest, status: int, detail: str) -> HttpResponse:
    if json_path(request.path):
        body = {"error": _reason(status)}
        if status == 404:
            body["path"] = request.path
        return JsonResponse(body, status=status)
    page = _PLAIN_PAGE.format(code=status, reason=HTTPStatus(status).phrase, detail=detail)
    return HttpResponse(page, status=status, content_type="text/html; charset=utf-8")


def error_404(request: HttpRequest, exception=None) -> HttpResponse:
    return _plain(request, 404, "Nothing here. The API lives under /api/ (see /api/docs/).")


def error_500(request: HttpRequest) -> HttpResponse:
    return _plain(request, 500, "The server failed; the error is in its log.")


def error_400(request: HttpRequest, exception=None) -> HttpResponse:
    return _plain(request, 400, "The request could not be understood.")


def error_403(request: HttpRequest, exception=None) -> HttpResponse:
    return _plain(request, 403, "Not allowed.")
