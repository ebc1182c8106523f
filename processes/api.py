"""REST views over the analysis processes: the catalogue, runs (start, follow, cancel) and consolidations."""

from __future__ import annotations

import base64

import django_filters
from django.conf import settings
from django.http import HttpResponse
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from processes import services
from processes.models import MemoryConsolidation, ProcessRun
from processes.registry import analysis_spec, script_modules


class ProcessCatalogueView(APIView):
    """The registered analyses, their parameters' JSON Schemas as declared, and the tick rules that start them."""

    def get(self, request):
        processes = settings.DAWN_CONFIG["processes"]
        triggers = processes["auto_triggers"]
        body = [
            {
                "name": name,
                "script": f"{name}.py",
                "description": analysis_spec(name).description,
                "parameters": analysis_spec(name).parameters,
                "trigger": {k: v for k, v in triggers[name].items() if v is not None} if name in triggers else None,
                "timeout_s": processes["timeout"],
            }
            for name in script_modules()
        ]
        return Response({"max_concurrent": processes["max_concurrent"], "processes": body})


class RunSerializer(serializers.BaseSerializer):
    def to_representation(self, instance: ProcessRun) -> dict:
        return instance.as_process_output()


class RunStartSerializer(serializers.Serializer):
    script = serializers.JSONField()
    parameters = serializers.JSONField(required=False, default=dict)

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise ValidationError({"non_field_errors": ["send a JSON object"]})
        unknown = sorted(set(data) - {"script", "parameters"})
        if unknown:
            raise ValidationError({name: ["unknown field"] for name in unknown})
        return super().to_internal_value(data)


class RunFilter(django_filters.FilterSet):
    script = django_filters.CharFilter()
    status = django_filters.ChoiceFilter(choices=ProcessRun.Status.choices)
    trigger = django_filters.CharFilter()
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = ProcessRun
        fields = ["script", "status", "trigger", "created_after", "created_before"]


class NewestFirst(CursorPagination):
    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class RunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Runs in the seed's Process Output Format; POST queues one (202), cancel stops one."""

    queryset = ProcessRun.objects.all()
    serializer_class = RunSerializer
    filterset_class = RunFilter
    pagination_class = NewestFirst

    def create(self, request):
        incoming = RunStartSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        try:
            run = services.run_create(**incoming.validated_data)
        except services.RunRejected as exc:
            raise ValidationError({exc.field: [exc.message]}) from None
        return Response(run.as_process_output(), status=status.HTTP_202_ACCEPTED)

    @action(detail=True, methods=["get"], url_path="visualization.png")
    def visualization(self, request, pk=None):
        """The run's picture as image/png (the stream's process events carry only its URL)."""
        picture = (self.get_object().output or {}).get("visualization")
        if not isinstance(picture, str) or not picture:
            return Response({"error": "this run has no picture"}, status=status.HTTP_404_NOT_FOUND)
        response = HttpResponse(base64.b64decode(picture), content_type="image/png")
        response["Cache-Control"] = "public, max-age=86400, immutable"  # a finished run's picture never changes
        return response

    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        try:
            run = services.run_cancel(run=self.get_object())
        except services.RunNotCancellable as exc:
            return Response({"error": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(run.as_process_output(), status=status.HTTP_202_ACCEPTED)


class ConsolidationSerializer(serializers.ModelSerializer):
    process_id = serializers.CharField(source="run.process_id", read_only=True)

    class Meta:
        model = MemoryConsolidation
        fields = ["id", "run", "process_id", "label", "centroid", "weight", "support", "source_tick_start", "source_tick_end", "created_at"]


class ConsolidationViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = MemoryConsolidation.objects.select_related("run")
    serializer_class = ConsolidationSerializer
    pagination_class = NewestFirst
    filterset_fields = ["run"]
