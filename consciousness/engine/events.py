"""Notable things a tick can report besides its figures."""

from __future__ import annotations

from dataclasses import dataclass

SPIKE_RISE = 0.2  # entropy rise within one tick that counts as a spike


@dataclass(frozen=True)
class MoodChanged:
    """The mood changed at this tick."""

    tick_number: int
    previous: str
    mood: str


@dataclass(frozen=True)
class EntropySpike:
    """Entropy jumped by SPIKE_RISE or more, or crossed into the chaotic range, at this tick."""

    tick_number: int
    previous: float
    entropy: float


@dataclass(frozen=True)
class MemoryWritten:
    """A new trace was stored, replacing the weakest slot."""

    tick_number: int
    slot: int
    novelty: float
