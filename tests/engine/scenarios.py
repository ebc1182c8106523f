"""Seeded stimulus scripts the engine tests run: the ten-minute mix, and stimuli held on."""

from __future__ import annotations

import numpy as np

from consciousness.engine import Engine, StepInputs, Stimulus

# (name, stimuli given on every tick of the block); each block lasts BLOCK ticks
MIX = (
    ("quiet", ()),
    ("excite", (("excite", 0.4),)),
    ("quiet", ()),
    ("calm", (("calm", 0.4),)),
    ("chaos", (("chaos", 0.5),)),
    ("focus", (("focus", 0.5),)),
    ("quiet", ()),
    ("calm+chaos", (("calm", 0.5), ("chaos", 0.8))),
    ("excite+chaos", (("excite", 0.3), ("chaos", 0.5))),
    ("quiet", ()),
)
BLOCK = 150
MIX_TICKS = 6000  # ten minutes at 10 Hz


def mix_inputs(ticks: int = MIX_TICKS, seed: int = 11):
    """StepInputs for each tick of the mix: blocks in a seeded order, intensities jittered by up to 30 %."""
    rng = np.random.default_rng(seed)
    out: list[StepInputs] = []
    while len(out) < ticks:
        for name, stimuli in (MIX[i] for i in rng.permutation(len(MIX))):
            scale = rng.uniform(0.7, 1.3, len(stimuli))
            block = tuple(Stimulus(kind, float(min(1.0, level * s))) for (kind, level), s in zip(stimuli, scale))
            out.extend(StepInputs(timestamp=float(len(out) + i) / 10, stimuli=block) for i in range(BLOCK))
    return out[:ticks]


def held(kind: str, intensity: float, ticks: int) -> list[StepInputs]:
    """One stimulus of `kind` on every tick."""
    return [StepInputs(stimuli=(Stimulus(kind, intensity),)) for _ in range(ticks)]


def run_ticks(engine: Engine, inputs) -> list[dict]:
    """Advance through `inputs`, returning the ticks."""
    return [engine.advance(i).tick for i in inputs]


def fields(ticks: list[dict]) -> dict[str, np.ndarray]:
    """Every numeric figure of the ticks as a series, keyed as the tick names it (subsystem figures by name)."""
    out = {k: np.array([t[k] for t in ticks]) for k in ("scup", "entropy", "neural_activity", "consciousness_unity", "memory_pressure")}
    for subsystem, figures in ticks[0]["subsystems"].items():
        for name in figures:
            out[name] = np.array([t["subsystems"][subsystem][name] for t in ticks])
    return out
