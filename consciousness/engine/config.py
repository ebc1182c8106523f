"""EngineConfig: the engine's parameters, validated from the plain `consciousness` mapping of config.yaml."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any


NOISE_MIN, NOISE_MAX = 0.001, 1.0  # the range the homeostat may move the noise amplitude in


class ConfigValueError(ValueError):
    """One setting is invalid; `key` names it (None for a problem between settings)."""

    def __init__(self, key: str | None, message: str) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class EngineConfig:
    """Validated engine parameters; build it with `from_mapping`."""

    initial_scup: float = 50.0  # SCUP of the state before the first tick (tick 0); its mood is dormant below 30
    entropy_target: float = 0.5  # set point of the entropy homeostat, and the centre of SCUP's entropy balance
    seed: int = 0
    units: int = 64  # network size
    history_window: int = 256  # ticks of per-unit rates kept (connectivity, fractal_dim, context)
    unity_window: int = 64  # recent ticks the unity / multi-state / entanglement figures look at
    lyapunov_window: int = 100  # ticks the tangent growth rates are averaged over
    burn_in: int = 256  # ticks run at construction (never fewer than history_window: buffers are full at tick 0)
    leak: float = 1.0  # fraction of the currents renewed each tick (1: the plain map x' = W tanh(gain x) + ...)
    gain: float = 0.95  # gain of the rate function without stimuli (the edge of chaos is near 1)
    noise: float = 0.1  # starting private noise amplitude per tick (the homeostat adapts it)
    homeostat_rate: float = 0.1  # log-noise change per tick per unit of entropy error
    entropy_bins: int = 10  # histogram bins of the activity entropy
    memory_capacity: int = 64  # trace slots
    memory_half_life: float = 300.0  # ticks for a trace to lose half its strength
    memory_novelty: float = 0.12  # RMS distance from the last trace that makes a pattern worth storing
    memory_interval: int = 20  # a trace is written at least this often (ticks)
    mood_duration: float = 40.0  # mean ticks a mood lasts (4 s at 10 Hz)
    valence_half_life: float = 100.0  # ticks for a process's mood influence to fade by half
    scup_impact_half_life: float = 100.0  # ticks for the SCUP points of process impacts to fade by half
    stimulus_half_life: float = 10.0  # ticks for a stimulus's effect to halve
    max_firing_rate: float = 200.0  # Hz of a unit at rate 1

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any]) -> EngineConfig:
        """Validate a plain mapping; unknown keys or impossible values raise ValueError naming the key."""
        if not isinstance(d, Mapping):
            raise ValueError(f"engine configuration must be a mapping, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in d.items():
            if key == "tick_rate":  # the loop's business, not the engine's
                continue
            if key not in known:
                raise ConfigValueError(key, f"unknown key {key!r} (known: tick_rate, {', '.join(sorted(known))})")
            values[key] = cls.check(key, value)
        cfg = cls(**values)
        cfg._check_consistency()
        return cfg

    @staticmethod
    def check(key: str, value: Any) -> Any:
        """The one validation of setting `key` (also used by runtick's options); ConfigValueError if invalid."""
        kind, valid, expectation = _RULES[key]
        try:
            return _checked(key, value, kind, valid, expectation)
        except ValueError as exc:
            raise ConfigValueError(key, str(exc)) from None

    def _check_consistency(self) -> None:
        if self.lyapunov_window > self.history_window:
            raise ConfigValueError(
                "lyapunov_window", f"lyapunov_window must be at most history_window ({self.history_window}), got {self.lyapunov_window}"
            )
        if self.unity_window > self.history_window:
            raise ConfigValueError("unity_window", f"unity_window must be at most history_window ({self.history_window}), got {self.unity_window}")


def _checked(key: str, value: Any, kind: type, valid: Callable[[Any], bool], expectation: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{key} must be a number, got {value!r}")
    if kind is int:
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError(f"{key} must be an integer, got {value!r}")
            value = int(value)
    else:
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"{key} must be finite, got {value!r}")
    if not valid(value):
        raise ValueError(f"{key} must be {expectation}, got {value!r}")
    return value


def _positive(v: float) -> bool:
    return v > 0


# key -> (type, check, what the check expects)
_RULES: dict[str, tuple[type, Callable[[Any], bool], str]] = {
    "initial_scup": (float, lambda v: 0 <= v <= 100, "in 0..100"),
    "entropy_target": (float, lambda v: 0 <= v <= 1, "in 0..1"),
    # stored with the run as a signed 64-bit integer
    "seed": (int, lambda v: 0 <= v < 2**63, "a non-negative integer below 2**63"),
    "units": (int, lambda v: 4 <= v <= 512, "in 4..512"),
    "history_window": (int, lambda v: 64 <= v <= 4096, "in 64..4096"),
    "unity_window": (int, lambda v: 8 <= v, "at least 8"),
    "lyapunov_window": (int, lambda v: 1 <= v, "at least 1"),
    "burn_in": (int, lambda v: 0 <= v <= 100_000, "in 0..100000"),
    "leak": (float, lambda v: 0 < v <= 1, "in (0, 1]"),
    "gain": (float, lambda v: 0 < v <= 10, "in (0, 10]"),
    "noise": (float, lambda v: NOISE_MIN <= v <= NOISE_MAX, f"in {NOISE_MIN:g}..{NOISE_MAX:g}"),
    "homeostat_rate": (float, lambda v: 0 <= v <= 1, "in 0..1"),
    "entropy_bins": (int, lambda v: 2 <= v <= 256, "in 2..256"),
    "memory_capacity": (int, lambda v: 1 <= v <= 4096, "in 1..4096"),
    "memory_half_life": (float, _positive, "positive"),
    "memory_novelty": (float, lambda v: v >= 0, "non-negative"),
    "memory_interval": (int, lambda v: v >= 1, "at least 1"),
    "mood_duration": (float, lambda v: v >= 1, "at least 1 tick"),
    "valence_half_life": (float, _positive, "positive"),
    "scup_impact_half_life": (float, _positive, "positive"),
    "stimulus_half_life": (float, _positive, "positive"),
    "max_firing_rate": (float, _positive, "positive"),
}

assert set(_RULES) == {f.name for f in fields(EngineConfig)}, "every field needs a validation rule"
