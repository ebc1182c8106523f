"""InFlight: the runs between their trigger tick and the tick that applies their impact, counted in ticks.

What it lists depends only on tick numbers (trigger, due) and on which runs have finished, so a batch run that
waits for its due runs sees the same `active_processes` and saves the same pending runs every time.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

MANUAL = "manual"


@dataclass
class Pending:
    """One run in flight: triggered (or, if manual, claimed) at `tick`, its impact due at `due`."""

    script: str
    trigger: str
    tick: int
    due: int
    run_id: int | None = None
    process_id: str | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)  # finished; its impact, if any, queued
    impact: bool = False  # an impact is queued and no tick has applied it yet

    def as_state(self) -> dict:
        # a manual run is found again by its row (claimed, so written); an auto-triggered one by its tick
        run = self.run_id if self.trigger == MANUAL else None
        return {"script": self.script, "trigger": self.trigger, "tick": self.tick, "due": self.due, "run": run}


class InFlight:
    """The pending runs, in the order they were triggered."""

    def __init__(self) -> None:
        self.entries: list[Pending] = []

    def add(self, entry: Pending) -> Pending:
        self.entries.append(entry)
        return entry

    def by_run(self, run_id: int) -> Pending | None:
        return next((e for e in self.entries if e.run_id == run_id), None)

    def by_process(self, process_id: str) -> Pending | None:
        return next((e for e in self.entries if e.process_id == process_id), None)

    def applied(self, sources: set[str]) -> None:
        """The impacts of the runs `sources` were applied by the tick just done."""
        for entry in self.entries:
            if entry.process_id in sources:
                entry.impact = False

    def retire(self, tick_number: int) -> None:
        """Forget the runs whose due tick is done, that have finished and whose impact (if any) applied."""
        self.entries = [e for e in self.entries if not (e.due <= tick_number and e.done.is_set() and not e.impact)]

    def active(self, next_tick: int) -> tuple[str, ...]:
        """The scripts in flight at tick `next_tick`: triggered before it, impact not yet applied."""
        return tuple(sorted({e.script for e in self.entries if e.tick < next_tick}))

    def waiting(self, tick_number: int) -> list[Pending]:
        """The runs due at or before `tick_number` that have not finished."""
        return [e for e in self.entries if e.due <= tick_number and not e.done.is_set()]

    def state(self) -> list[dict]:
        """The runs in flight, to be saved with the engine's snapshot (an auto-triggered run's row may not be
        written yet when a crash comes)."""
        return [e.as_state() for e in self.entries]
