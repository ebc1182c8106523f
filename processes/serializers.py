"""The runs API's bodies as DRF serializers: what the OpenAPI schema is generated from."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiSerializerExtension, OpenApiSerializerFieldExtension
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from consciousness.rest import EpochField
from processes.models import MemoryConsolidation, ProcessRun, script_bare, script_file
from processes.registry import script_modules


def script_choices() -> list[tuple[str, str]]:
    """Each script as the seed writes it ("chaos_engine.py") and bare ("chaos_engine"): both are accepted."""
    return [(form, form) for name in sorted(script_modules()) for form in (script_file(name), name)]


class ScriptField(serializers.CharField):
    """A script's name: written "chaos_engine.py" as in the seed's Process Output Format; read with or without .py."""

    def to_representation(self, value: str) -> str:
        return script_file(value)

    def to_internal_value(self, data: object) -> str:
        return script_bare(super().to_internal_value(data))


class ScriptFieldSchema(OpenApiSerializerFieldExtension):
    """In a request, the schema names the scripts one may send; a stored run may name one since removed."""

    target_class = ScriptField

    def map_serializer_field(self, auto_schema, direction):
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        if direction == "request":
            schema["enum"] = [form for form, _label in script_choices()]
        return schema


@extend_schema_field({"type": "object", "additionalProperties": True})
class ParametersField(serializers.JSONField):
    """A script's parameters: a JSON object, checked against the script's JSON Schema by the runs service."""


class RunSerializer(serializers.ModelSerializer):
    """A run in the seed's Process Output Format, plus what a client needs to follow it (times in epoch seconds)."""

    script = ScriptField(read_only=True)
    created_at = EpochField(read_only=True)
    start_time = EpochField(read_only=True, allow_null=True)
    end_time = EpochField(read_only=True, allow_null=True)
    output = serializers.JSONField(
        read_only=True, allow_null=True, help_text="{analysis, metrics, visualization (base64 PNG)} once completed."
    )
    consciousness_impact = serializers.JSONField(read_only=True, allow_null=True)
    impact_late = serializers.BooleanField(
        read_only=True, help_text="Applied after impact_due_tick: the run outlasted processes.impact_delay in real time."
    )

    class Meta:
        model = ProcessRun
        fields = [
            "id", "process_id", "script", "status", "trigger", "parameters", "tick_number", "created_at",
            "start_time", "end_time", "output", "consciousness_impact", "exit_code", "reason", "impact_due_tick",
            "applied_at_tick", "impact_late",
        ]
        read_only_fields = fields


class RunStartSerializer(serializers.Serializer):
    """POST /api/runs/: which script, with which parameters (checked against the script's JSON Schema)."""

    script = ScriptField(help_text='e.g. "chaos_engine.py" or "chaos_engine"; GET /api/processes/ lists them.')
    parameters = ParametersField(
        required=False, default=dict, help_text="An object; its schema is the script's in GET /api/processes/."
    )

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise ValidationError({"non_field_errors": ["send a JSON object"]})
        unknown = sorted(set(data) - set(self.fields))
        if unknown:
            raise ValidationError({name: ["unknown field"] for name in unknown})
        return super().to_internal_value(data)


class RunStartSchema(OpenApiSerializerExtension):
    """The schema says what to_internal_value enforces: no field beyond script and parameters."""

    target_class = RunStartSerializer

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target_class, direction, bypass_extensions=True)
        return {**schema, "additionalProperties": False}


class ConsolidationSerializer(serializers.ModelSerializer):
    process_id = serializers.CharField(source="run.process_id", read_only=True)
    created_at = EpochField(read_only=True)

    class Meta:
        model = MemoryConsolidation
        fields = [
            "id", "run", "process_id", "label", "centroid", "weight", "support",
            "source_tick_start", "source_tick_end", "created_at",
        ]


class CatalogueEntrySerializer(serializers.Serializer):
    name = serializers.CharField(help_text='The bare name, e.g. "chaos_engine".')
    script = serializers.CharField(help_text='As runs show it, e.g. "chaos_engine.py".')
    description = serializers.CharField()
    parameters = serializers.JSONField(help_text="The script's parameters, as a JSON Schema.")
    trigger = serializers.JSONField(allow_null=True, help_text="The tick rule that starts it (config.yaml), or null.")
    timeout_s = serializers.FloatField()


class CatalogueSerializer(serializers.Serializer):
    """GET /api/processes/: the analyses DAWN can run."""

    max_concurrent = serializers.IntegerField()
    processes = CatalogueEntrySerializer(many=True)
