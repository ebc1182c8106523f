"""The seed's Tick Data Format, defined once: the fields a tick carries and how a state becomes one."""

from __future__ import annotations

from .inputs import StepInputs
from .state import EngineState

# the top-level figures of a tick, in the seed's order (also the columns the history stores them in)
TICK_FIGURES = ("scup", "entropy", "mood", "neural_activity", "consciousness_unity", "memory_pressure")
# subsystem -> (figure as the tick names it, EngineState attribute)
SUBSYSTEM_FIGURES: dict[str, tuple[tuple[str, str], ...]] = {
    "neural": (("firing_rate", "firing_rate"), ("connectivity", "connectivity")),
    "consciousness": (("multi-state", "multi_state"), ("entanglement", "entanglement")),
    "chaos": (("lyapunov", "lyapunov"), ("fractal_dim", "fractal_dim")),
}
# every key of a tick, top level then "subsystem.figure": the flat columns of an export
TICK_COLUMNS = (
    "tick_number",
    "timestamp",
    *TICK_FIGURES,
    "active_processes",
    *(f"{subsystem}.{name}" for subsystem, figures in SUBSYSTEM_FIGURES.items() for name, _attr in figures),
)


def tick_of(state: EngineState, inputs: StepInputs) -> dict:
    """The state in the design's Tick Data Format: plain Python numbers, nothing numpy."""
    tick: dict = {"tick_number": int(state.tick_number), "timestamp": float(inputs.timestamp)}
    for name in TICK_FIGURES:
        value = getattr(state, name)
        tick[name] = str(value) if name == "mood" else float(value)
    tick["active_processes"] = [str(p) for p in inputs.active_processes]
    tick["subsystems"] = {
        subsystem: {name: float(getattr(state, attr)) for name, attr in figures}
        for subsystem, figures in SUBSYSTEM_FIGURES.items()
    }
    return tick


def tick_flat(tick: dict) -> dict:
    """A tick as one flat row keyed by TICK_COLUMNS (active processes joined by spaces)."""
    row = {name: tick[name] for name in ("tick_number", "timestamp", *TICK_FIGURES)}
    row["active_processes"] = " ".join(tick["active_processes"])
    for subsystem, figures in SUBSYSTEM_FIGURES.items():
        for name, _attr in figures:
            row[f"{subsystem}.{name}"] = tick["subsystems"][subsystem][name]
    return row
