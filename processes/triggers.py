"""Tick rules, defined once: the shape of a rule in config.yaml's processes.auto_triggers and how it fires."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from consciousness.engine import MOODS

CONDITIONS = ("every", "entropy_below", "mood", "scup_change")
# processes.impact_delay: a run triggered at tick T applies its impact at tick T + delay, whatever its wall
# time. At most 128 = the default history_window (256) less the 128 ticks of a run's context, so that a
# run still pending at a snapshot can be re-run on its own context after a crash.
IMPACT_DELAY_DEFAULT = 10
IMPACT_DELAY_MAX = 128


class TriggerRule(BaseModel):
    """One auto-trigger: exactly one condition, plus a cooldown in ticks."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    every: int | None = Field(None, ge=1, le=10_000_000)
    entropy_below: float | None = Field(None, gt=0, le=1)
    mood: str | None = None
    scup_change: float | None = Field(None, gt=0, le=100)
    window: int = Field(20, ge=1, le=100_000)
    cooldown: int = Field(0, ge=0, le=10_000_000)

    @field_validator("entropy_below", "scup_change", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value

    @field_validator("mood")
    @classmethod
    def _known_mood(cls, value: str | None) -> str | None:
        if value is not None and value not in MOODS:
            raise ValueError(f"unknown mood {value!r}; known: {', '.join(MOODS)}")
        return value

    @model_validator(mode="after")
    def _one_condition(self) -> TriggerRule:
        if len([k for k in CONDITIONS if getattr(self, k) is not None]) != 1:
            raise ValueError(f"a rule needs exactly one of {', '.join(CONDITIONS)}")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in CONDITIONS if getattr(self, k) is not None)

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

    def summary(self) -> dict:
        """The rule as config.yaml would write it, without the conditions it does not use."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class TriggerRules:
    """Evaluate the rules tick by tick; cooldowns are counted in ticks."""

    def __init__(self, config: Mapping[str, TriggerRule | Mapping], *, state: Mapping | None = None) -> None:
        self.rules = {
            script: rule if isinstance(rule, TriggerRule) else TriggerRule.model_validate(rule)
            for script, rule in config.items()
        }
        longest = max((r.window for r in self.rules.values() if r.scup_change is not None), default=1)
        state = state or {}
        self._last_fired: dict[str, int] = {k: int(v) for k, v in dict(state.get("last_fired", {})).items()}
        self._scup: deque[float] = deque((float(v) for v in state.get("scup", ())), maxlen=longest + 1)

    def state(self) -> dict:
        """What the rules remember (cooldowns, the SCUP window), to be saved with the engine's snapshot:
        rules rebuilt from it fire exactly as the uninterrupted ones would."""
        return {"last_fired": dict(self._last_fired), "scup": list(self._scup)}

    def fire(self, tick: Mapping) -> list[tuple[str, TriggerRule]]:
        """(script, rule) for each rule this tick satisfies (each at most once per cooldown)."""
        number = tick["tick_number"]
        self._scup.append(tick["scup"])
        fired = []
        for script, rule in self.rules.items():
            last = self._last_fired.get(script)
            if last is not None and rule.cooldown and number - last < rule.cooldown:
                continue
            if self._holds(rule, tick):
                self._last_fired[script] = number
                fired.append((script, rule))
        return fired

    def _holds(self, rule: TriggerRule, tick: Mapping) -> bool:
        if rule.every is not None:
            return tick["tick_number"] % rule.every == 0
        if rule.entropy_below is not None:
            return tick["entropy"] < rule.entropy_below
        if rule.mood is not None:
            return tick["mood"] == rule.mood
        recent = list(self._scup)[-(rule.window + 1):]
        return len(recent) > 1 and max(recent) - min(recent) > rule.scup_change
