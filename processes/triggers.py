"""Tick rules from config.yaml's processes.auto_triggers: which analyses a tick starts."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    script: str
    every: int | None = None
    entropy_below: float | None = None
    mood: str | None = None
    scup_change: float | None = None
    window: int = 20
    cooldown: int = 0

    @property
    def label(self) -> str:
        """How the rule reads in a run's `trigger` field."""
        if self.every is not None:
            return f"every {self.every} ticks"
        if self.entropy_below is not None:
            return f"entropy below {self.entropy_below:g}"
        if self.mood is not None:
            return f"mood {self.mood}"
        return f"scup change over {self.scup_change:g} in {self.window} ticks"


class TriggerRules:
    """Evaluate the rules tick by tick; cooldowns are counted in ticks."""

    def __init__(self, config: Mapping[str, Mapping]) -> None:
        self.rules = [Rule(script=script, **{k: v for k, v in spec.items() if v is not None}) for script, spec in config.items()]
        self._last_fired: dict[str, int] = {}
        longest = max((r.window for r in self.rules if r.scup_change is not None), default=1)
        self._scup: deque[float] = deque(maxlen=longest + 1)

    def fire(self, tick: Mapping) -> list[Rule]:
        """The rules this tick satisfies (each at most once per cooldown)."""
        number = tick["tick_number"]
        self._scup.append(tick["scup"])
        fired = []
        for rule in self.rules:
            last = self._last_fired.get(rule.script)
            if last is not None and rule.cooldown and number - last < rule.cooldown:
                continue
            if self._holds(rule, tick):
                self._last_fired[rule.script] = number
                fired.append(rule)
        return fired

    def _holds(self, rule: Rule, tick: Mapping) -> bool:
        if rule.every is not None:
            return tick["tick_number"] % rule.every == 0
        if rule.entropy_below is not None:
            return tick["entropy"] < rule.entropy_below
        if rule.mood is not None:
            return tick["mood"] == rule.mood
        recent = list(self._scup)[-(rule.window + 1):]
        return len(recent) > 1 and max(recent) - min(recent) > rule.scup_change
