"""JSON error bodies everywhere: clients of a real-time API never have to parse an HTML error page."""

from __future__ import annotations

import logging

from django.http import HttpRequest, JsonResponse
from rest_framework.views import exception_handler

logger = logging.getLogger(__name__)


def api_exception_handler(exc, context):
    """DRF's handler, with unexpected errors turned into a JSON 500 instead of an HTML page."""
    response = exception_handler(exc, context)
    if response is None:
        logger.exception("unhandled error in %s", context.get("view").__class__.__name__, exc_info=exc)
        return JsonResponse({"error": "internal server error"}, status=500)
    if isinstance(response.data, dict) and "detail" in response.data and len(response.data) == 1:
        response.data = {"error": str(response.data["detail"])}
    elif response.status_code == 400:
        response.data = {"error": "invalid request", "fields": response.data}
    return response


def json_404(request: HttpRequest, exception=None) -> JsonResponse:
    return JsonResponse({"error": "not found", "path": request.path}, status=404)


def json_500(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"error": "internal server error"}, status=500)
