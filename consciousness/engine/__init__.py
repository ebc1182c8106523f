"""DAWN's engine: a pure, seeded model of the simulation (numpy only; no Django, no clock, no global RNG)."""

from .config import EngineConfig
from .engine import SNAPSHOT_VERSION, Engine
from .events import EntropySpike, MemoryWritten, MoodChanged
from .inputs import MOOD_INFLUENCES, STIMULUS_KINDS, Impact, StepInputs, Stimulus
from .model import step
from .mood import MOOD_TRANSITIONS, MOODS, mood_next
from .state import SERIES, EngineState, Network, StepResult

__all__ = [
    "MOODS",
    "MOOD_INFLUENCES",
    "MOOD_TRANSITIONS",
    "SERIES",
    "SNAPSHOT_VERSION",
    "STIMULUS_KINDS",
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
]
