"""Load and validate config.yaml: the simulation's parameters, checked once at start-up."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from consciousness.engine import ConfigValueError, EngineConfig
from consciousness.loop import tick_rate_check
from processes.scripts import SCRIPTS
from processes.triggers import IMPACT_DELAY_DEFAULT, IMPACT_DELAY_MAX, TriggerRule


class ConfigError(Exception):
    """config.yaml is missing, unreadable or invalid; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _int_as_float(value: Any) -> Any:
    # strict mode refuses ints for floats; YAML writes 30 for 30.0 (bools stay refused)
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


Number = Annotated[float, BeforeValidator(_int_as_float)]


def tick_rate_option_check(value: str) -> float:
    """The one reading of runtick's --rate: "max" (unthrottled, math.inf) or a tick rate as tick_rate_check takes."""
    if value == "max":
        return math.inf
    try:
        number = float(value)
    except ValueError:
        raise ValueError('must be a number of ticks per second or "max"') from None
    return tick_rate_check(number)


class ConsciousnessConfig(BaseModel):
    # tick_rate is the loop's; every other key is an engine knob, validated by EngineConfig itself
    model_config = ConfigDict(extra="allow", strict=True, frozen=True)

    tick_rate: float = 10.0

    @field_validator("tick_rate", mode="before")
    @classmethod
    def _rate(cls, value: Any) -> Any:
        return tick_rate_check(value)


class ProcessesConfig(_Strict):
    max_concurrent: int = Field(3, ge=1, le=64)
    timeout: Number = Field(30.0, gt=0, le=3600)
    # ticks from a run's trigger to the tick that applies its impact (triggers.py says why it is bounded)
    impact_delay: int = Field(IMPACT_DELAY_DEFAULT, ge=1, le=IMPACT_DELAY_MAX)
    auto_triggers: dict[str, TriggerRule] = Field(default_factory=dict)
    max_queued: int = Field(200, ge=1, le=100_000)  # runs posted and waiting, everyone's together
    max_queued_per_user: int = Field(20, ge=1, le=100_000)
    retention_hours: Number = Field(24.0 * 7, gt=0, le=24 * 3650)  # finished runs older than this are pruned

    @field_validator("auto_triggers", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        unknown = sorted(set(value) - set(SCRIPTS))
        if unknown:
            raise ValueError(f"unknown process {unknown[0]!r}; known: {', '.join(SCRIPTS)}")
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
    flush_interval: Number = Field(1.0, gt=0, le=60)
    retention_hours: Number = Field(24.0, gt=0, le=24 * 3650)
    prune_interval: Number = Field(60.0, gt=0, le=86400)
    # ticks kept unpersisted while the database refuses writes (about 1.5 KB each); beyond, the oldest go
    max_backlog: int = Field(36_000, ge=10, le=10_000_000)


class StreamConfig(_Strict):
    slow_client_ticks: int = Field(50, ge=1, le=100_000)
    stale_after: Number = Field(2.0, gt=0, le=3600)
    max_connections_per_address: int = Field(256, ge=1, le=1_000_000)  # in each serving process


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
    try:
        engine = EngineConfig.from_mapping(consciousness)
    except ConfigValueError as exc:
        where = f"consciousness.{exc.key}" if exc.key else "consciousness"
        raise ConfigError(f"{source}: {where}: {exc}") from None
    result = parsed.model_dump(mode="json")
    result["consciousness"] = {"tick_rate": parsed.consciousness.tick_rate, **dataclasses.asdict(engine)}
    return result


def config_load(path: str | Path) -> dict:
    """Read a YAML file and validate it; any problem raises ConfigError naming the file and the key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    return config_parse(data, source=str(path))
