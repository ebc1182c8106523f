"""REST views over the analysis processes: the catalogue, runs (start, follow, cancel) and consolidations."""

from __future__ import annotations

import base64

import django_filters
from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from consciousness.listing import NewestFirst
from consciousness.rest import ID_PATTERN, ErrorSerializer, epoch_parse
from processes import services
from processes.models import MemoryConsolidation, ProcessRun, script_bare, script_file
from processes.registry import analysis_spec, script_modules
from processes.serializers import (
    CatalogueSerializer,
    ConsolidationSerializer,
    RunSerializer,
    RunStartSerializer,
    script_choices,
)


class ProcessCatalogueView(APIView):
    """The registered analyses, their parameters' JSON Schemas as declared, and the tick rules that start them."""

    @extend_schema(responses=CatalogueSerializer)
    def get(self, request):
        processes = settings.DAWN_CONFIG["processes"]
        triggers = processes["auto_triggers"]
        body = [
            {
                "name": name,
                "script": script_file(name),
                "description": analysis_spec(name).description,
                "parameters": analysis_spec(name).parameters,
                "trigger": {k: v for k, v in triggers[name].items() if v is not None} if name in triggers else None,
                "timeout_s": processes["timeout"],
            }
            for name in script_modules()
        ]
        return Response({"max_concurrent": processes["max_concurrent"], "processes": body})


class RunFilter(django_filters.FilterSet):
    script = django_filters.ChoiceFilter(choices=script_choices, method="filter_script")
    status = django_filters.ChoiceFilter(choices=ProcessRun.Status.choices)
    trigger = django_filters.CharFilter()
    created_after = django_filters.CharFilter(method="filter_time", label="Created at or after (epoch seconds)")
    created_before = django_filters.CharFilter(method="filter_time", label="Created before (epoch seconds)")

    class Meta:
        model = ProcessRun
        fields = ["script", "status", "trigger", "created_after", "created_before"]

    def filter_script(self, queryset, name, value):
        return queryset.filter(script=script_bare(value))

    def filter_time(self, queryset, name, value):
        lookup = "gte" if name == "created_after" else "lt"
        try:
            moment = epoch_parse(value)
        except ValidationError as exc:
            raise ValidationError({name: exc.detail}) from None
        return queryset.filter(**{f"created_at__{lookup}": moment})


def run_manageable(user, run: ProcessRun) -> bool:
    """Its poster may cancel a run, and so may whoever may cancel any; local play (no user) cancels any."""
    if not user.is_authenticated:
        return True  # WritePermission let an anonymous write through: open writes from loopback
    return run.requested_by_id == user.pk or user.has_perm("processes.cancel_any_run")


class RunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Runs in the seed's Process Output Format; POST queues one (202), cancel stops one."""

    queryset = ProcessRun.objects.all()
    serializer_class = RunSerializer
    filterset_class = RunFilter
    pagination_class = NewestFirst
    lookup_value_regex = ID_PATTERN
    write_permission = "processes.add_processrun"  # start runs, and cancel one's own

    def get_serializer_class(self):
        return RunStartSerializer if self.action == "create" else RunSerializer

    @extend_schema(request=RunStartSerializer, responses={202: RunSerializer})
    def create(self, request):
        incoming = RunStartSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        user = request.user if request.user.is_authenticated else None
        try:
            run = services.run_create(**incoming.validated_data, requested_by=user)
        except services.RunRejected as exc:
            raise ValidationError({exc.field: [exc.message]}) from None
        except services.RunsBusy as exc:
            body = {"error": str(exc)}
            return Response(body, status=status.HTTP_429_TOO_MANY_REQUESTS, headers={"Retry-After": str(exc.retry_after)})
        return Response(RunSerializer(run).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses={(200, "image/png"): OpenApiResponse(description="The run's picture.")})
    @action(detail=True, methods=["get"], url_path="visualization.png")
    def visualization(self, request, pk=None, format=None):
        """The run's picture as image/png (the stream's process events carry only its URL)."""
        picture = (self.get_object().output or {}).get("visualization")
        if not isinstance(picture, str) or not picture:
            return Response({"error": "this run has no picture"}, status=status.HTTP_404_NOT_FOUND)
        response = HttpResponse(base64.b64decode(picture), content_type="image/png")
        response["Cache-Control"] = "public, max-age=86400, immutable"  # a finished run's picture never changes
        return response

    @extend_schema(
        request=None,
        responses={202: RunSerializer, 409: OpenApiResponse(ErrorSerializer, description="The run has finished.")},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        run = self.get_object()
        if not run_manageable(request.user, run):
            raise PermissionDenied("only the run's poster or a user who may cancel any run can cancel it")
        try:
            run = services.run_cancel(run=run)
        except services.RunNotCancellable as exc:
            return Response({"error": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(RunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class ConsolidationViewSet(viewsets.ReadOnlyModelViewSet):
    """Long-term memory patterns that memory_consolidator runs produced, newest first; `?run=` filters."""

    queryset = MemoryConsolidation.objects.select_related("run")
    serializer_class = ConsolidationSerializer
    pagination_class = NewestFirst
    lookup_value_regex = ID_PATTERN
    filterset_fields = ["run"]
