"""Load and validate config.yaml: the simulation's parameters, checked once at start-up."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

PROCESS_NAMES = (
    "neural_analyzer",
    "consciousness_processor",
    "chaos_engine",
    "memory_consolidator",
    "dream_generator",
)


class ConfigError(Exception):
    """config.yaml is missing, unreadable or invalid; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ConsciousnessConfig(BaseModel):
    # Extra keys are engine knobs, validated by EngineConfig.from_mapping (which rejects unknown ones).
    model_config = ConfigDict(extra="allow", strict=True, frozen=True)

    tick_rate: float = Field(10.0, gt=0, le=1000)
    initial_scup: float = Field(50.0, ge=0, le=100)
    entropy_target: float = Field(0.5, ge=0, le=1)
    seed: int = Field(42, ge=0, lt=2**63)

    @field_validator("tick_rate", "initial_scup", "entropy_target", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        # strict mode refuses ints for floats; accept them, but never bools or non-finite values
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError("must be a number")
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return float(value)


class TriggerRule(_Strict):
    """One auto-trigger: exactly one condition, plus a cooldown in ticks."""

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

    @model_validator(mode="after")
    def _one_condition(self) -> TriggerRule:
        conditions = [k for k in ("every", "entropy_below", "mood", "scup_change") if getattr(self, k) is not None]
        if len(conditions) != 1:
            raise ValueError("a rule needs exactly one of every, entropy_below, mood, scup_change")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("every", "entropy_below", "mood", "scup_change") if getattr(self, k) is not None)


class ProcessesConfig(_Strict):
    max_concurrent: int = Field(3, ge=1, le=64)
    timeout: float = Field(30.0, gt=0, le=3600)
    auto_triggers: dict[str, TriggerRule] = Field(default_factory=dict)

    @field_validator("timeout", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value

    @field_validator("auto_triggers", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        unknown = sorted(set(value) - set(PROCESS_NAMES))
        if unknown:
            raise ValueError(f"unknown process {unknown[0]!r}; known: {', '.join(PROCESS_NAMES)}")
        # the seed's form "neural_analyzer: 50" means every 50 ticks
        return {k: {"every": v} if isinstance(v, int) and not isinstance(v, bool) else v for k, v in value.items()}


class ApiConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    cors_origins: tuple[str, ...] = ()

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _list(cls, value: Any) -> Any:
        return tuple(value) if isinstance(value, list) else value


class PersistenceConfig(_Strict):
    flush_interval: float = Field(1.0, gt=0, le=60)
    retention_hours: float = Field(24.0, gt=0, le=24 * 3650)
    prune_interval: float = Field(60.0, gt=0, le=86400)

    @field_validator("*", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value


class StreamConfig(_Strict):
    slow_client_ticks: int = Field(50, ge=1, le=100_000)
    stale_after: float = Field(2.0, gt=0, le=3600)

    @field_validator("stale_after", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value


class DawnConfig(_Strict):
    consciousness: ConsciousnessConfig = Field(default_factory=ConsciousnessConfig)
    processes: ProcessesConfig = Field(default_factory=ProcessesConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    persistence: PersistenceConfig = Field(default_factory=PersistenceConfig)
    stream: StreamConfig = Field(default_factory=StreamConfig)


def _describe(error: dict) -> str:
    key = ".".join(str(p) for p in error["loc"]) or "(top level)"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    elif "input" in error and error["type"] != "missing" and not isinstance(error["input"], dict):
        message = f"{message} (got {error['input']!r})"
    return f"{key}: {message}"


def config_parse(data: Any, *, source: str = "config.yaml") -> dict:
    """Validate a plain mapping and return it as plain data with defaults; ConfigError names the key."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections")
    try:
        parsed = DawnConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_describe(e) for e in exc.errors())
        raise ConfigError(f"{source}: {problems}") from None
    consciousness = parsed.consciousness.model_dump()
    # the engine owns its own knobs: let it reject unknown or impossible ones now, not at the first tick
    from consciousness.engine import EngineConfig

    try:
        EngineConfig.from_mapping(consciousness)
    except ValueError as exc:
        raise ConfigError(f"{source}: consciousness: {exc}") from None
    result = parsed.model_dump(mode="json")
    result["consciousness"] = consciousness
    return result


def config_load(path: str | Path) -> dict:
    """Read a YAML file and validate it; any problem raises ConfigError naming the file and the key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    return config_parse(data, source=str(path))
