"""The state API's bodies as DRF serializers: the Tick Data Format's, built from its one definition
(engine/tick.py), health's, and engine control's (the command, its answer, its journal row)."""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from consciousness.engine.tick import SUBSYSTEM_FIGURES, TICK_FIGURES
from consciousness.loop import ACTIONS, STEP_TICKS_MAX, Command, CommandInvalid
from consciousness.models import EngineControl, Tick
from consciousness.rest import EpochField


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
    status = serializers.CharField(
        help_text='"ticking", "paused" (held by a control command, heard from lately: healthy); failing: "stale" '
        '(no tick for stale_after_s) or "no ticks yet". Only the failing ones are listed in `failing`.'
    )
    tick_number = serializers.IntegerField(allow_null=True)
    last_tick_age_s = serializers.FloatField(allow_null=True, help_text="Seconds since the newest tick's timestamp.")
    stale_after_s = serializers.FloatField()
    source = serializers.ChoiceField(choices=["stream", "database", "none"], help_text="Where the newest tick came from.")


class DatabaseHealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok", "error"], help_text="Whether this process can write now.")
    fault = serializers.CharField(
        allow_null=True, help_text='"locked", "timeout", "disk full", "read-only", "unreachable", or null.'
    )
    error = serializers.CharField(allow_null=True, help_text="The write probe's error, in the database's words.")


class PersistenceHealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=["ok", "failing", "behind", "unknown"],
        help_text='"failing": the last flush failed; "behind": a tick has waited longer than a flush interval '
        'plus stale_after; "unknown": no report from the engine and no recent persisted tick.',
    )
    source = serializers.ChoiceField(
        choices=["engine", "stream", "database", "none"],
        help_text="engine: the history writer of this process; stream: runtick's status report; database: the "
        "newest persisted tick only.",
    )
    backlog_ticks = serializers.IntegerField(allow_null=True, help_text="Ticks not persisted yet.")
    oldest_unpersisted_tick = serializers.IntegerField(allow_null=True)
    oldest_unpersisted_age_s = serializers.FloatField(allow_null=True)
    last_flush_age_s = serializers.FloatField(allow_null=True, help_text="Seconds since the last good flush.")
    failures = serializers.IntegerField(allow_null=True, help_text="Failed flushes since runtick started.")
    consecutive_failures = serializers.IntegerField(allow_null=True)
    dropped_ticks = serializers.IntegerField(allow_null=True, help_text="Ticks dropped past max_backlog.")
    max_backlog = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField(allow_null=True, help_text="The last failed flush's error.")
    newest_persisted_tick = serializers.IntegerField(allow_null=True)
    newest_persisted_age_s = serializers.FloatField(allow_null=True)


class ChannelLayerHealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=["ok", "unreachable", "not joined", "no ticks", "unused"],
        help_text='"unreachable": receiving fails; "not joined": the stream group membership lapsed; '
        '"no ticks": the engine ticks (as the history shows) but none reach this process; "unused": it serves '
        "no stream.",
    )
    joined = serializers.BooleanField(allow_null=True)
    receive_failures = serializers.IntegerField(allow_null=True)
    error = serializers.CharField(allow_null=True)


class HealthSerializer(serializers.Serializer):
    """/health/: 200 while ticks are computed, persisted and broadcast; 503 listing what fails in `failing`."""

    status = serializers.ChoiceField(choices=["ok", "unhealthy"])
    failing = serializers.ListField(
        child=serializers.ChoiceField(choices=["engine", "database", "persistence", "channel_layer"]),
        help_text="The failing components, by name.",
    )
    engine = EngineHealthSerializer()
    database = DatabaseHealthSerializer()
    persistence = PersistenceHealthSerializer()
    channel_layer = ChannelLayerHealthSerializer()

class ControlRequestSerializer(serializers.Serializer):
    """POST /api/engine/control/: one command, checked by the tick loop's own rules."""

    action = serializers.ChoiceField(choices=ACTIONS, help_text="step: `ticks` ticks, only while paused.")
    ticks = serializers.IntegerField(required=False, help_text=f"step only: 1 to {STEP_TICKS_MAX} ticks.")
    rate = serializers.FloatField(required=False, help_text="rate only: ticks a second, (0, 1000].")

    def validate(self, attrs: dict) -> dict:
        try:
            return {"command": Command(**attrs)}
        except CommandInvalid as exc:
            raise ValidationError({exc.field: [exc.message]}) from None


class ControlStateSerializer(serializers.Serializer):
    """A command the engine handled, as the stream's `control` message carries it."""

    command = serializers.CharField(help_text="The command's id (hex), as its journal row has it.")
    action = serializers.ChoiceField(choices=ACTIONS)
    ticks = serializers.IntegerField(allow_null=True)
    rate = serializers.FloatField(allow_null=True)
    tick_number = serializers.IntegerField(help_text="The last tick before the command took effect.")
    paused = serializers.BooleanField(help_text="The engine's state after it.")
    tick_rate = serializers.FloatField(allow_null=True, help_text="The rate after it (null: unthrottled).")
    by = serializers.CharField(help_text="Who sent it: a user's name, or local play and the address.")
    epoch = serializers.CharField()


class ControlAnswerSerializer(ControlStateSerializer):
    """202: the engine applied the command between two ticks (a step's ticks follow at the engine's rate)."""

    outcome = serializers.ChoiceField(choices=[EngineControl.Outcome.APPLIED.value])
    detail = serializers.CharField()


class ControlSerializer(serializers.ModelSerializer):
    """One journalled control command (GET /api/engine/control/)."""

    command = serializers.CharField(source="command.hex", read_only=True)
    by = serializers.CharField(source="label", read_only=True)
    requested_by = serializers.IntegerField(source="requested_by_id", read_only=True, allow_null=True)
    requested_at = EpochField(read_only=True)
    applied_at = EpochField(read_only=True)

    class Meta:
        model = EngineControl
        fields = [
            "id", "command", "action", "ticks", "rate", "outcome", "detail", "tick_number", "paused",
            "tick_rate", "epoch", "by", "requested_by", "requested_at", "applied_at",
        ]
        read_only_fields = fields
