"""The mood state machine: forced dormant/chaotic states, otherwise persistent seeded transitions."""

from __future__ import annotations

import math

from numpy.random import Generator

MOODS = (
    "dormant",
    "awakening",
    "curious",
    "contemplative",
    "excited",
    "serene",
    "melancholic",
    "euphoric",
    "anxious",
    "confused",
    "chaotic",
)

# The first five rows are the design's; the rest close the graph so that no mood is a dead end.
MOOD_TRANSITIONS: dict[str, tuple[str, ...]] = {
    "dormant": ("awakening",),
    "awakening": ("curious", "contemplative"),
    "curious": ("excited", "contemplative", "confused"),
    "contemplative": ("serene", "melancholic"),
    "excited": ("euphoric", "anxious"),
    "serene": ("contemplative", "curious", "euphoric"),
    "melancholic": ("contemplative", "serene", "anxious"),
    "euphoric": ("excited", "serene", "anxious"),
    "anxious": ("confused", "melancholic", "curious"),
    "confused": ("curious", "anxious", "contemplative"),
    "chaotic": ("confused", "anxious", "awakening"),
}

DORMANT_BELOW = 30.0  # SCUP under which the system is dormant whatever its mood
CHAOTIC_ABOVE = 0.8  # entropy over which the system is chaotic whatever its mood

PLEASANT = frozenset({"serene", "euphoric", "curious", "excited"})
UNPLEASANT = frozenset({"melancholic", "anxious", "confused"})
# how much each mood wants activity: +1 aroused, -1 quiet
AROUSAL = {
    "dormant": -1.0,
    "awakening": 0.0,
    "curious": 0.5,
    "contemplative": -1.0,
    "excited": 1.0,
    "serene": -1.0,
    "melancholic": -0.5,
    "euphoric": 1.0,
    "anxious": 1.0,
    "confused": 0.0,
    "chaotic": 1.0,
}
# how much each mood goes with unstable (chaotic) dynamics: +1 tense, -1 settled
TENSION = {
    "dormant": 0.0,
    "awakening": 0.0,
    "curious": 0.0,
    "contemplative": -1.0,
    "excited": 0.5,
    "serene": -1.0,
    "melancholic": 0.0,
    "euphoric": 0.0,
    "anxious": 1.0,
    "confused": 1.0,
    "chaotic": 1.0,
}
AROUSAL_SLOPE = 6.0  # log-weight per unit of (activity - 0.5) and of arousal
VALENCE_SLOPE = 2.0  # log-weight per unit of valence for a (un)pleasant successor
TENSION_SLOPE = 4.0  # log-weight per unit of (0.5 - stability) and of tension
SCUP_VALENCE_SCALE = 50.0  # SCUP points above 50 that count as valence 1


def mood_valence(valence: float, scup: float) -> float:
    """The valence moods lean on: the impacts' valence plus (scup - 50) / 50, in -1..1."""
    return min(max(valence + (scup - 50.0) / SCUP_VALENCE_SCALE, -1.0), 1.0)


def successor_weights(
    current: str, *, activity: float, valence: float, scup: float = 50.0, stability: float = 0.5
) -> tuple[float, ...]:
    """Unnormalised weights of the successors of `current`: arousal follows activity, pleasantness the
    valence (impacts and SCUP), tension the instability of the dynamics."""
    lean = mood_valence(valence, scup)
    weights = []
    for mood in MOOD_TRANSITIONS[current]:
        pleasantness = 1.0 if mood in PLEASANT else -1.0 if mood in UNPLEASANT else 0.0
        log_weight = (
            AROUSAL_SLOPE * (activity - 0.5) * AROUSAL[mood]
            + VALENCE_SLOPE * lean * pleasantness
            + TENSION_SLOPE * (0.5 - stability) * TENSION[mood]
        )
        weights.append(math.exp(max(min(log_weight, 30.0), -30.0)))
    return tuple(weights)


def mood_next(
    current: str,
    *,
    scup: float,
    entropy: float,
    activity: float,
    valence: float,
    rng: Generator,
    mean_duration: float = 40.0,
    stability: float = 0.5,
) -> str:
    """The mood after one tick; always draws two uniforms, so the mood stream advances the same way every tick."""
    if current not in MOOD_TRANSITIONS:
        raise ValueError(f"unknown mood {current!r}")
    switch_draw, pick_draw = rng.random(2)
    if scup < DORMANT_BELOW:
        return "dormant"
    if entropy > CHAOTIC_ABOVE:
        return "chaotic"
    # a constant per-tick hazard gives moods a mean lifetime of mean_duration ticks
    if switch_draw >= 1.0 / mean_duration:
        return current
    weights = successor_weights(current, activity=activity, valence=valence, scup=scup, stability=stability)
    threshold = pick_draw * sum(weights)
    cumulative = 0.0
    for mood, weight in zip(MOOD_TRANSITIONS[current], weights):
        cumulative += weight
        if threshold < cumulative:
            return mood
    return MOOD_TRANSITIONS[current][-1]
