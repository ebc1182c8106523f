"""The engine's data: the fixed network, the evolving state and the result of one step."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# columns of EngineState.series, the per-tick scalar history handed to analysis processes
SERIES = ("scup", "entropy", "neural_activity", "consciousness_unity", "memory_pressure")


@dataclass(frozen=True)
class Network:
    """The wiring drawn from the seed at construction; constant for the life of a run."""

    coupling: np.ndarray  # (units, units): coupling[i, j] is the weight from unit j to unit i
    bias: np.ndarray  # (units,)
    module: np.ndarray  # (units,) module index of each unit

    @property
    def units(self) -> int:
        return int(self.bias.shape[0])


@dataclass(frozen=True)
class EngineState:
    """Everything a step reads and writes; numpy arrays are read-only and replaced, never mutated."""

    tick_number: int
    activity: np.ndarray  # (units,) activity in 0..1
    adaptation: np.ndarray  # (units,) fatigue: a slow average of activity that inhibits the unit
    history: np.ndarray  # (history_window, units) per-unit activity, oldest first, last row = activity
    series: np.ndarray  # (history_window, len(SERIES)) scalar figures, oldest first
    log_temperature: float  # log of the temperature (noise up, gain down) the entropy homeostat adapts
    stimulus_levels: np.ndarray  # (len(STIMULUS_KINDS),) decaying traces of the stimuli received
    memory_traces: np.ndarray  # (memory_capacity, units) stored activity patterns
    memory_strengths: np.ndarray  # (memory_capacity,) strength of each trace, 0 for an empty slot
    memory_last: int  # slot of the most recent trace, -1 before the first
    memory_age: int  # ticks since the last trace was written
    scup_offset: float  # added to the computed SCUP; fades geometrically
    valence: float  # -1..1 mood bias left by process impacts; fades geometrically
    mood: str
    mood_ticks: int  # ticks spent in the current mood
    scup_raw: float  # SCUP from the figures alone, before the offset
    scup: float
    entropy: float
    neural_activity: float
    consciousness_unity: float
    memory_pressure: float
    firing_rate: float
    connectivity: float
    multi_state: float
    entanglement: float
    lyapunov: float
    fractal_dim: float


@dataclass(frozen=True)
class StepResult:
    """One tick: the new state, its JSON-safe tick dict, its events and the stimuli it applied."""

    state: EngineState
    tick: dict
    events: tuple = ()
    applied_stimuli: tuple = ()


def frozen(array: np.ndarray) -> np.ndarray:
    """The array marked read-only, so a shared state cannot be changed behind the engine's back."""
    array.setflags(write=False)
    return array
