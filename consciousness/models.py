"""Persisted engine data: the tick history, the snapshot a restart resumes from, and the control journal."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from consciousness.engine import TICK_FIGURES
from consciousness.loop import ACTIONS

MAIN_RUN = "main"


class Tick(models.Model):
    """One persisted tick, in the seed's Tick Data Format: a column per top-level figure (TICK_FIGURES)."""

    tick_number = models.BigIntegerField(primary_key=True)
    timestamp = models.FloatField(help_text="Epoch seconds at which the engine produced the tick.")
    # the same instant as a datetime, for the admin's date hierarchy and for retention
    recorded_at = models.DateTimeField(db_index=True)
    scup = models.FloatField()
    entropy = models.FloatField()
    mood = models.CharField(max_length=32, db_index=True)
    neural_activity = models.FloatField()
    consciousness_unity = models.FloatField()
    memory_pressure = models.FloatField()
    active_processes = models.JSONField(default=list)
    subsystems = models.JSONField()

    class Meta:
        ordering = ["-tick_number"]

    def __str__(self) -> str:
        return f"tick {self.tick_number} ({self.mood}, scup {self.scup:.1f})"

    def as_tick_data(self) -> dict:
        """The row in the seed's Tick Data Format, exactly as it was streamed."""
        return {
            "tick_number": self.tick_number,
            "timestamp": self.timestamp,
            **{name: getattr(self, name) for name in TICK_FIGURES},
            "active_processes": list(self.active_processes),
            "subsystems": self.subsystems,
        }


class EngineSnapshot(models.Model):
    """The engine's full state (RNG included) as of `tick_number`; written with the history it covers."""

    run = models.CharField(max_length=64, unique=True, default=MAIN_RUN)
    epoch = models.UUIDField(help_text="Identifies this run; a reset starts a new epoch.")
    seed = models.BigIntegerField()
    tick_number = models.BigIntegerField()
    state = models.JSONField()
    started_at = models.DateTimeField()
    saved_at = models.DateTimeField()

    class Meta:
        # the engine's write permissions (consciousness.access): grant them to users or groups in the admin
        permissions = [
            ("send_stimulus", "Can send stimuli to the engine"),
            ("control_engine", "Can pause, resume, step and set the rate of the engine"),
        ]

    def __str__(self) -> str:
        return f"{self.run} at tick {self.tick_number} (seed {self.seed})"


class EngineControl(models.Model):
    """One control command the engine handled: who asked, what, and the tick at whose end it took effect."""

    class Outcome(models.TextChoices):
        APPLIED = "applied"
        REFUSED = "refused", "refused (e.g. a step while running)"
        EXPIRED = "expired", "expired (reached the engine after its sender stopped waiting)"

    command = models.UUIDField(unique=True, help_text="The id its sender gave it, answered with it.")
    action = models.CharField(max_length=8, choices=[(action, action) for action in ACTIONS])
    ticks = models.PositiveIntegerField(null=True, blank=True, help_text="A step's ticks.")
    rate = models.FloatField(null=True, blank=True, help_text="A rate command's ticks per second.")
    outcome = models.CharField(max_length=8, choices=Outcome.choices)
    detail = models.CharField(max_length=200, blank=True)
    tick_number = models.BigIntegerField(help_text="The last tick before the command took effect.")
    paused = models.BooleanField(help_text="Whether the engine was paused after it.")
    tick_rate = models.FloatField(null=True, help_text="The engine's rate after it (empty: unthrottled).")
    epoch = models.UUIDField()
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="engine_controls",
    )
    label = models.CharField(max_length=150, help_text="Who sent it, as the stream says (user, local play).")
    requested_at = models.DateTimeField()
    applied_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        argument = f" {self.ticks}" if self.ticks is not None else ""
        argument = f" {self.rate:g}" if self.rate is not None else argument
        return f"{self.action}{argument} at tick {self.tick_number} ({self.outcome}, by {self.label})"
