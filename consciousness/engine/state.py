"""The engine's data: the fixed network, the evolving state and the result of one step."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# columns of EngineState.series, the per-tick scalar history handed to analysis processes
SERIES = ("scup", "entropy", "neural_activity", "consciousness_unity", "memory_pressure", "multi_state")


@dataclass(frozen=True)
class Network:
    """The wiring drawn from the seed at construction; constant for the life of a run."""

    coupling: np.ndarray  # (units, units): coupling[i, j] is the weight from unit j to unit i

    @property
    def units(self) -> int:
        return int(self.coupling.shape[0])


@dataclass(frozen=True)
class EngineState:
    """Everything a step reads and writes; numpy arrays are read-only and replaced, never mutated."""

    tick_number: int
    activity: np.ndarray  # (units,) rates in 0..1 (what the tick's figures and the history are made of)
    currents: np.ndarray  # (units,) the network's state x
    tangent: np.ndarray  # (units,) unit tangent vector carried along the trajectory (Benettin)
    lyapunov_logs: np.ndarray  # (lyapunov_window,) log growth of the tangent at each recent tick, oldest first
    history: np.ndarray  # (history_window, units) rates, oldest first, last row = activity
    series: np.ndarray  # (history_window, len(SERIES)) scalar figures, oldest first
    window_sums: np.ndarray  # (2, units + 2, units + 1): [0] the history window, [1] its last unity_window
    # rows; row 0 the sum of each tick's vector, rows 1.. the sum of their outer products (window.py)
    increment_sums: np.ndarray  # (HIGUCHI_KMAX,) sum of |y[i+k] - y[i]| of the neural_activity series
    log_noise: float  # log of the private noise amplitude, which the entropy homeostat adapts
    stimulus_levels: np.ndarray  # (len(STIMULUS_KINDS),) decaying traces of the stimuli received
    memory_traces: np.ndarray  # (memory_capacity, units) stored activity patterns
    memory_strengths: np.ndarray  # (memory_capacity,) strength of each trace, 0 for an empty slot
    memory_last: int  # slot of the most recent trace, -1 before the first
    memory_age: int  # ticks since the last trace was written
    scup_impact: float  # the SCUP points process impacts added, fading geometrically
    valence: float  # -1..1 mood bias left by process impacts; fades geometrically
    mood: str
    mood_ticks: int  # ticks spent in the current mood
    stability: float  # consciousness stability, the SCUP factor: 1 / (1 + exp(lyapunov / STABILITY_SCALE))
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
