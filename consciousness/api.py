"""REST views over the engine: the current tick, the persisted history, the service's health, and control."""

from __future__ import annotations

import django_filters
from asgiref.sync import async_to_sync
from django.http import HttpRequest, HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from consciousness import control, selectors
from consciousness.health import health_report
from consciousness.hub import stream_hub_latest
from consciousness.metrics import metrics_text
from consciousness.models import EngineControl, Tick
from consciousness.listing import NewestFirst
from consciousness.rest import ErrorSerializer
from consciousness.serializers import (
    ControlAnswerSerializer,
    ControlRequestSerializer,
    ControlSerializer,
    HealthSerializer,
    TickSerializer,
)


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


class EngineControlView(generics.ListAPIView):
    """Engine control: POST a command (pause, resume, step N ticks while paused, rate R); GET, the journal.

    The POST waits for the engine to apply the command between two ticks (control.ACK_TIMEOUT_S at most) and
    answers 202 with the tick it took effect after; 409 for a step while running; 503 with no answer in time.
    """

    queryset = EngineControl.objects.select_related("requested_by")
    serializer_class = ControlSerializer
    pagination_class = NewestFirst
    filterset_fields = ["action", "outcome"]
    write_permission = control.CONTROL_PERMISSION

    def get_serializer_class(self):
        return ControlRequestSerializer if self.request.method == "POST" else ControlSerializer

    @extend_schema(
        request=ControlRequestSerializer,
        responses={
            202: ControlAnswerSerializer,
            409: OpenApiResponse(ErrorSerializer, description="A step while the engine runs: pause first."),
            503: OpenApiResponse(ErrorSerializer, description="No answer from the engine in time (Retry-After)."),
        },
    )
    def post(self, request):
        incoming = ControlRequestSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        user_id, by = control.requester(request.user, request.META.get("REMOTE_ADDR"))
        try:
            command = incoming.validated_data["command"]
            answer = async_to_sync(control.control_request)(command, user_id=user_id, by=by)
        except Exception as exc:  # the channel layer cannot take it now
            reason = f"the engine cannot be reached now ({type(exc).__name__}): try again"
            answer = control.ControlAnswer(control.UNANSWERED, reason, None)
        if answer.outcome == control.APPLIED:
            body = {**answer.data, "outcome": answer.outcome, "detail": answer.detail}
            return Response(body, status=status.HTTP_202_ACCEPTED)
        if answer.outcome == control.REFUSED:
            return Response({"error": answer.detail}, status=status.HTTP_409_CONFLICT)
        retry = str(max(1, round(control.ACK_TIMEOUT_S)))
        unavailable = status.HTTP_503_SERVICE_UNAVAILABLE
        return Response({"error": answer.detail}, status=unavailable, headers={"Retry-After": retry})


def metrics_view(request: HttpRequest) -> HttpResponse:
    """This process's metrics in the Prometheus text format."""
    body, content_type = metrics_text()
    return HttpResponse(body, content_type=content_type)
