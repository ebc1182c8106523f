"""DAWN's engine: a pure, seeded model of the simulation (numpy only; no Django, no clock, no global RNG)."""

from .config import ConfigValueError, EngineConfig
from .engine import SNAPSHOT_VERSION, Engine
from .events import EntropySpike, MemoryWritten, MoodChanged
from .inputs import MOOD_INFLUENCES, STIMULUS_KINDS, Impact, StepInputs, Stimulus
from .model import step
from .mood import MOOD_TRANSITIONS, MOODS, mood_next
from .state import SERIES, EngineState, Network, StepResult
from .tick import SUBSYSTEM_FIGURES, TICK_COLUMNS, TICK_FIGURES, tick_flat, tick_of

__all__ = [
    "MOODS",
    "MOOD_INFLUENCES",
    "MOOD_TRANSITIONS",
    "SERIES",
    "SNAPSHOT_VERSION",
    "STIMULUS_KINDS",
    "SUBSYSTEM_FIGURES",
    "ConfigValueError",
    "TICK_COLUMNS",
    "TICK_FIGURES",
    "Engine",
    "EngineConfig",
    "EngineState",
    "EntropySpike",
    "Impact",
    "MemoryWritten",
    "MoodChanged",
    "Network",
    "StepInputs",
    "StepResult",
    "Stimulus",
    "mood_next",
    "step",
    "tick_flat",
    "tick_of",
]
