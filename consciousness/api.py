"""REST views over the engine: the current tick, the persisted history and the service's health."""

from __future__ import annotations

import django_filters
from django.http import HttpRequest, HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics
from rest_framework.response import Response
from rest_framework.views import APIView

from consciousness import selectors
from consciousness.health import health_report
from consciousness.hub import stream_hub_latest
from consciousness.metrics import metrics_text
from consciousness.models import Tick
from consciousness.listing import NewestFirst
from consciousness.rest import ErrorSerializer
from consciousness.serializers import HealthSerializer, TickSerializer


class TickFilter(django_filters.FilterSet):
    since = django_filters.NumberFilter(field_name="tick_number", lookup_expr="gte", label="Lowest tick_number")
    until = django_filters.NumberFilter(field_name="tick_number", lookup_expr="lte", label="Highest tick_number")
    mood = django_filters.CharFilter(field_name="mood")

    class Meta:
        model = Tick
        fields = ["since", "until", "mood"]


class TickPagination(NewestFirst):
    ordering = "-tick_number"
    page_size = 100
    max_page_size = 1000


class TickHistoryView(generics.ListAPIView):
    """Persisted ticks, newest first; `?since=&until=` bound tick_number, `?mood=` filters."""

    queryset = Tick.objects.all()
    serializer_class = TickSerializer
    filterset_class = TickFilter
    pagination_class = TickPagination


def current_tick() -> tuple[dict | None, str]:
    """The newest tick this process knows of, and where it came from ("stream" or "database")."""
    hub = stream_hub_latest()
    if hub is not None and hub.latest_tick is not None:
        return hub.latest_tick, "stream"
    row = selectors.tick_latest()
    return (row.as_tick_data(), "database") if row is not None else (None, "database")


class StateView(APIView):
    """The current tick in the seed's Tick Data Format."""

    serializer_class = TickSerializer

    @extend_schema(responses={200: TickSerializer, 503: OpenApiResponse(ErrorSerializer, description="No tick yet.")})
    def get(self, request):
        tick, _source = current_tick()
        if tick is None:
            return Response({"error": "the engine has not produced a tick yet"}, status=503)
        return Response(TickSerializer(tick).data)


class HealthView(APIView):
    """200 while ticks are computed, persisted and broadcast; 503 naming each failing component otherwise."""

    serializer_class = HealthSerializer

    @extend_schema(
        responses={
            200: HealthSerializer,
            503: OpenApiResponse(HealthSerializer, description="`failing` names the components at fault."),
        }
    )
    def get(self, request):
        body = health_report()
        return Response(HealthSerializer(body).data, status=503 if body["failing"] else 200)


def metrics_view(request: HttpRequest) -> HttpResponse:
    """This process's metrics in the Prometheus text format."""
    body, content_type = metrics_text()
    return HttpResponse(body, content_type=content_type)
