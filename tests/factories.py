"""Test data made by the real engine, so API tests see ticks exactly as runtick would persist them."""

from __future__ import annotations

import time
import uuid

from consciousness import services
from consciousness.engine import Engine, EngineConfig, StepInputs

ENGINE_CONFIG = EngineConfig.from_mapping({"seed": 3})


def ticks_make(count: int, *, seed: int = 3, start_time: float | None = None, period: float = 0.1) -> list[dict]:
    """Run a fresh engine for `count` ticks and return them in the Tick Data Format."""
    engine = Engine(ENGINE_CONFIG, seed=seed)
    start = time.time() - count * period if start_time is None else start_time
    return [engine.advance(StepInputs(timestamp=start + i * period)).tick for i in range(count)]


def history_make(count: int, *, seed: int = 3, start_time: float | None = None, period: float = 0.1) -> list[dict]:
    """Persist `count` engine ticks with their snapshot, as runtick's flush does."""
    engine = Engine(ENGINE_CONFIG, seed=seed)
    start = time.time() - count * period if start_time is None else start_time
    ticks = [engine.advance(StepInputs(timestamp=start + i * period)).tick for i in range(count)]
    services.history_flush(
        ticks=ticks, snapshot=engine.snapshot(), epoch=uuid.uuid4(), seed=seed, tick_number=engine.state.tick_number
    )
    return ticks
