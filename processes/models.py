"""Records of analysis runs and of the long-term memory patterns consolidations produce."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from processes.sandbox import Outcome

SCRIPT_SUFFIX = ".py"


def script_file(name: str) -> str:
    """A script's name as the seed writes it: "chaos_engine" -> "chaos_engine.py"."""
    return f"{name}{SCRIPT_SUFFIX}"


def script_bare(name: str) -> str:
    """A script's registry name, with or without the suffix: "chaos_engine.py" -> "chaos_engine"."""
    return name.removesuffix(SCRIPT_SUFFIX)


class ProcessRun(models.Model):
    """One execution of an analysis script: the row is the record, and the queue."""

    # The sandbox's outcomes, between queued/running and abandoned (was running when its runner died;
    # never re-run automatically).
    Status = models.TextChoices(
        "Status",
        [("QUEUED", "queued"), ("RUNNING", "running"), *((o.name, o.value) for o in Outcome),
         ("ABANDONED", "abandoned")],
        module=__name__,
        qualname="ProcessRun.Status",
    )

    FINISHED = (Status.COMPLETED, Status.FAILED, Status.TIMEOUT, Status.CANCELLED, Status.ABANDONED)

    process_id = models.CharField(max_length=80, unique=True, null=True, help_text='e.g. "neural_analyzer_000001"')
    script = models.CharField(max_length=64, db_index=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    trigger = models.CharField(max_length=64, default="manual", db_index=True, help_text='"manual" or the rule that fired')
    parameters = models.JSONField(default=dict)
    context = models.JSONField(default=dict, help_text="The engine state the run analysed (summary).")
    seed = models.BigIntegerField(null=True, blank=True)
    tick_number = models.BigIntegerField(
        null=True, blank=True, help_text="The tick whose state the run analysed: its trigger's (or its claim's, if manual)."
    )
    impact_due_tick = models.BigIntegerField(
        null=True, blank=True, help_text="The tick that applies the impact: tick_number + processes.impact_delay."
    )
    epoch = models.UUIDField(null=True, blank=True, help_text="The engine run whose ticks tick_number counts.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    start_time = models.DateTimeField(null=True, blank=True)
    end_time = models.DateTimeField(null=True, blank=True)
    output = models.JSONField(null=True, blank=True)
    consciousness_impact = models.JSONField(null=True, blank=True)
    exit_code = models.IntegerField(null=True, blank=True)
    signal = models.IntegerField(null=True, blank=True)
    reason = models.TextField(blank=True, default="")
    cancel_requested = models.BooleanField(default=False)
    applied_at_tick = models.BigIntegerField(null=True, blank=True, help_text="The tick that applied the impact.")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="Who posted the run (none for tick rules and for local play).",
    )

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["status", "id"])]
        # add_processrun starts runs and cancels one's own; this cancels anyone's
        permissions = [("cancel_any_run", "Can cancel any run, not only its own")]

    def __str__(self) -> str:
        return f"{self.process_id or self.script} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def impact_late(self) -> bool:
        """The impact was applied after its due tick: the run outlasted the delay in real time."""
        applied, due = self.applied_at_tick, self.impact_due_tick
        return applied is not None and due is not None and applied > due

    def as_process_output(self) -> dict:
        """The run in the seed's Process Output Format, plus what a client needs to follow it."""
        return {
            "id": self.pk,
            "process_id": self.process_id,
            "script": script_file(self.script),
            "status": self.status,
            "trigger": self.trigger,
            "parameters": self.parameters,
            "tick_number": self.tick_number,
            "created_at": self.created_at.timestamp() if self.created_at else None,
            "start_time": self.start_time.timestamp() if self.start_time else None,
            "end_time": self.end_time.timestamp() if self.end_time else None,
            "output": self.output,
            "consciousness_impact": self.consciousness_impact,
            "exit_code": self.exit_code,
            "reason": self.reason,
            "impact_due_tick": self.impact_due_tick,
            "applied_at_tick": self.applied_at_tick,
            "impact_late": self.impact_late,
        }


class MemoryConsolidation(models.Model):
    """One long-term pattern a memory consolidation produced from a range of ticks."""

    run = models.ForeignKey(ProcessRun, on_delete=models.CASCADE, related_name="consolidations")
    label = models.CharField(max_length=200)
    centroid = models.JSONField(help_text="The pattern: mean unit activity of its ticks.")
    weight = models.FloatField(help_text="Share of the source ticks in this pattern.")
    support = models.IntegerField(help_text="Number of source ticks in this pattern.")
    source_tick_start = models.BigIntegerField()
    source_tick_end = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.label} (ticks {self.source_tick_start}-{self.source_tick_end})"
