"""What reaches a tick from outside: stimuli from clients and impacts from analysis processes."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

STIMULUS_KINDS = ("excite", "calm", "chaos", "focus")
MOOD_INFLUENCES = ("positive", "negative", "neutral")


def _number(key: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{key} must be a finite number, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{key} must be in {low:g}..{high:g}, got {value!r}")
    return float(value)


def _reject_unknown(cls: type, d: Any) -> None:
    if not isinstance(d, Mapping):
        raise ValueError(f"{cls.__name__} must be a mapping, got {type(d).__name__}")
    known = {f.name for f in fields(cls)}
    for key in d:
        if key not in known:
            raise ValueError(f"unknown {cls.__name__} key {key!r} (known: {', '.join(sorted(known))})")


@dataclass(frozen=True)
class Stimulus:
    """A push on the network: excite, calm, chaos or focus, at an intensity in 0..1."""

    kind: str
    intensity: float
    ref: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in STIMULUS_KINDS:
            raise ValueError(f"kind must be one of {', '.join(STIMULUS_KINDS)}, got {self.kind!r}")
        object.__setattr__(self, "intensity", _number("intensity", self.intensity, 0.0, 1.0))
        if self.ref is not None and not isinstance(self.ref, str):
            raise ValueError(f"ref must be a string or None, got {self.ref!r}")

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any]) -> Stimulus:
        """Validate a plain mapping (kind, intensity, optional ref); ValueError naming the bad key."""
        _reject_unknown(cls, d)
        for key in ("kind", "intensity"):
            if key not in d:
                raise ValueError(f"stimulus needs {key!r}")
        return cls(kind=d["kind"], intensity=d["intensity"], ref=d.get("ref"))


@dataclass(frozen=True)
class Impact:
    """The feedback of an analysis process on the engine, applied at one tick."""

    scup_change: float = 0.0  # added to the SCUP offset, which then fades
    mood_influence: str = "neutral"  # biases the next mood transitions toward pleasant or unpleasant moods
    memory_relief: float = 0.0  # fraction of memory strength consolidated away
    entropy_drive: float = 0.0  # push on the noise temperature, hence on entropy
    source: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "scup_change", _number("scup_change", self.scup_change, -100.0, 100.0))
        if self.mood_influence not in MOOD_INFLUENCES:
            raise ValueError(f"mood_influence must be one of {', '.join(MOOD_INFLUENCES)}, got {self.mood_influence!r}")
        object.__setattr__(self, "memory_relief", _number("memory_relief", self.memory_relief, 0.0, 1.0))
        object.__setattr__(self, "entropy_drive", _number("entropy_drive", self.entropy_drive, -1.0, 1.0))
        if not isinstance(self.source, str):
            raise ValueError(f"source must be a string, got {self.source!r}")

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any]) -> Impact:
        """Validate a plain mapping (a process's consciousness_impact); ValueError naming the bad key."""
        _reject_unknown(cls, d)
        return cls(**dict(d))


@dataclass(frozen=True)
class StepInputs:
    """Everything one tick takes from outside; the timestamp is only echoed into the tick."""

    timestamp: float = 0.0
    stimuli: tuple[Stimulus, ...] = ()
    impacts: tuple[Impact, ...] = ()
    active_processes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.timestamp, bool) or not isinstance(self.timestamp, (int, float)) or not math.isfinite(self.timestamp):
            raise ValueError(f"timestamp must be a finite number, got {self.timestamp!r}")
        object.__setattr__(self, "timestamp", float(self.timestamp))
        # lists are accepted for convenience; the tick must not share mutable containers with the caller
        object.__setattr__(self, "stimuli", tuple(self.stimuli))
        object.__setattr__(self, "impacts", tuple(self.impacts))
        object.__setattr__(self, "active_processes", tuple(str(p) for p in self.active_processes))
