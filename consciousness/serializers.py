"""The state API's bodies as DRF serializers, built from the Tick Data Format's one definition (engine/tick.py)."""

from __future__ import annotations

from rest_framework import serializers

from consciousness.engine.tick import SUBSYSTEM_FIGURES, TICK_FIGURES
from consciousness.models import Tick


def _figure(name: str) -> serializers.Field:
    if name == "mood":
        return serializers.CharField(help_text="The mood state machine's current mood.")
    return serializers.FloatField(help_text=f"The tick's {name}.")


def _subsystem(subsystem: str, figures: tuple[tuple[str, str], ...]) -> type[serializers.Serializer]:
    fields = {name: serializers.FloatField() for name, _attr in figures}
    return type(f"{subsystem.capitalize()}Figures", (serializers.Serializer,), fields)


SubsystemsSerializer = type(
    "Subsystems",
    (serializers.Serializer,),
    {subsystem: _subsystem(subsystem, figures)() for subsystem, figures in SUBSYSTEM_FIGURES.items()},
)


class TickSerializer(serializers.Serializer):
    """One tick in the seed's Tick Data Format, as streamed on /ws and persisted."""

    def get_fields(self) -> dict[str, serializers.Field]:
        return {
            "tick_number": serializers.IntegerField(min_value=0),
            "timestamp": serializers.FloatField(help_text="Epoch seconds at which the engine produced the tick."),
            **{name: _figure(name) for name in TICK_FIGURES},
            "active_processes": serializers.ListField(child=serializers.CharField(), help_text="Scripts running now."),
            "subsystems": SubsystemsSerializer(),
        }

    def to_representation(self, instance: Tick | dict) -> dict:
        return super().to_representation(instance.as_tick_data() if isinstance(instance, Tick) else instance)


class EngineHealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ticking", "stale", "no ticks yet"])
    tick_number = serializers.IntegerField(allow_null=True)
    last_tick_age_s = serializers.FloatField(allow_null=True, help_text="Seconds since the newest tick's timestamp.")
    stale_after_s = serializers.FloatField()
    source = serializers.ChoiceField(choices=["stream", "database", "none"], help_text="Where the newest tick came from.")


class HealthSerializer(serializers.Serializer):
    """/health/: 200 while everything works, 503 listing what does not in `failing`."""

    status = serializers.ChoiceField(choices=["ok", "unhealthy"])
    failing = serializers.ListField(child=serializers.CharField(), help_text="The failing components, by name.")
    engine = EngineHealthSerializer()
    database = serializers.CharField(help_text='"ok" or "error: <exception class>".')
