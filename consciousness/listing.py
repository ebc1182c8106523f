"""How the API's lists answer: strict query strings and cursor pages whose size and cursors are checked."""

from __future__ import annotations

from base64 import b64decode
from binascii import Error as Base64Error
from urllib import parse

from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.settings import api_settings


class StrictFilterBackend(DjangoFilterBackend):
    """django-filter, and a 400 naming any query parameter the view does not know (rather than ignoring it)."""

    def filter_queryset(self, request, queryset, view):
        known = set(self._known(request, queryset, view))
        unknown = sorted(set(request.query_params) - known)
        if unknown:
            hint = f"unknown query parameter; known: {', '.join(sorted(known))}"
            raise ValidationError({name: [hint] for name in unknown})
        return super().filter_queryset(request, queryset, view)

    def _known(self, request, queryset, view):
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is not None:
            yield from filterset_class.base_filters
        paginator = getattr(view, "paginator", None)
        for attr in ("cursor_query_param", "page_size_query_param"):
            if getattr(paginator, attr, None):
                yield getattr(paginator, attr)
        yield api_settings.URL_FORMAT_OVERRIDE


class NewestFirst(CursorPagination):
    """Cursor pages, newest first: stable while rows keep arriving; over-cap sizes and bad cursors are 400s."""

    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_size(self, request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            size = 0
        if not 1 <= size <= self.max_page_size:
            raise ValidationError({self.page_size_query_param: [f"a whole number from 1 to {self.max_page_size}"]})
        return size

    def decode_cursor(self, request) -> Cursor | None:
        encoded = request.query_params.get(self.cursor_query_param)
        if encoded is None:
            return None
        try:
            tokens = parse.parse_qs(b64decode(encoded.encode("ascii"), validate=True).decode("ascii"))
            offset = int(tokens.get("o", ["0"])[0])
            reverse = bool(int(tokens.get("r", ["0"])[0]))
            position = tokens.get("p", [None])[0]
            if position is not None:
                int(position)  # every DAWN ordering is by an integer key
        except (UnicodeError, Base64Error, ValueError, TypeError):
            raise ValidationError({self.cursor_query_param: ["not a cursor this API issued"]}) from None
        if not 0 <= offset <= self.offset_cutoff:
            raise ValidationError({self.cursor_query_param: ["not a cursor this API issued"]})
        return Cursor(offset=offset, reverse=reverse, position=position)
