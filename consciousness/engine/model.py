"""The model: a seeded modular rate network, its figures, memory, SCUP and mood, advanced by the pure `step`."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from numpy.random import Generator

from .config import EngineConfig
from .events import SPIKE_RISE, EntropySpike, MemoryWritten, MoodChanged
from .inputs import STIMULUS_KINDS, StepInputs
from .measures import (
    correlation_matrix,
    higuchi_fd,
    lyapunov_rosenstein,
    mean_abs_offdiagonal,
    shannon_entropy_normalized,
    spectrum_figures,
)
from .mood import CHAOTIC_ABOVE, mood_next
from .state import SERIES, EngineState, Network, StepResult, frozen
from .tick import tick_of

# wiring: units excite their own module and inhibit the others, so modules compete and switch under noise
P_WITHIN = 0.6
P_BETWEEN = 0.25
WITHIN_STRENGTH = 2.5  # total excitation a unit gets from its fully active module
BETWEEN_STRENGTH = 1.5  # total inhibition a unit gets from the other modules fully active
WEIGHT_SPREAD = 0.4  # sigma of the log-normal weight factor
BIAS_SPREAD = 0.25  # heterogeneity of the units' thresholds

# stimuli: each kind leaves a trace that decays with stimulus_half_life; these scale its effect
EXCITE_DRIVE = 2.0  # input added per unit of excite trace
CALM_DRIVE = 1.0  # input removed per unit of calm trace
CALM_GAIN = 1.0  # the gain is divided by 1 + CALM_GAIN * calm
CHAOS_NOISE = 12.0  # the noise temperature is multiplied by 1 + CHAOS_NOISE * chaos
FOCUS_COMMON = 2.5  # amplitude of the input shared by all units per unit of focus trace
FOCUS_QUIET = 1.0  # private noise is divided by 1 + FOCUS_QUIET * focus
STIMULUS_LEVEL_MAX = 3.0  # a flood of stimuli saturates instead of blowing the network up

# fatigue: an active unit tires, so a module that won the competition eventually lets another one win
ADAPTATION_TAU = 100.0  # ticks for fatigue to follow activity
ADAPTATION_STRENGTH = 1.5  # input removed per unit of fatigue

# entropy homeostat
# temperature multiplies the noise and divides the gain: hot units are flat and noisy, so their activities
# spread over the bins (high entropy); cold ones saturate at 0 or 1 (low entropy)
LOG_TEMPERATURE_MIN = math.log(0.2)
LOG_TEMPERATURE_MAX = math.log(5.0)
ENTROPY_DRIVE_GAIN = 0.7  # log-temperature step of an impact with entropy_drive 1

VALENCE_STEP = 0.5  # valence added by a positive impact (subtracted by a negative one)
SCUP_OFFSET_MAX = 100.0
STABILITY_WINDOW = 50  # ticks over which the variability of unity is judged
UNITY_VARIABILITY_SCALE = 0.05  # std of unity at which consciousness_stability reaches 0

LYAPUNOV_LIMIT = 5.0
HIGUCHI_KMAX = 10
SIGMOID_CLIP = 40.0  # exp overflows far beyond this; the sigmoid is flat there anyway

_SERIES_INDEX = {name: i for i, name in enumerate(SERIES)}


def build_network(cfg: EngineConfig, rng: Generator) -> Network:
    """Draw the modular coupling matrix and thresholds from the construction stream."""
    n = cfg.units
    module = (np.arange(n) * cfg.modules) // n
    same = module[:, None] == module[None, :]
    np.fill_diagonal(same, False)
    other = module[:, None] != module[None, :]
    draw = rng.random((n, n))
    factor = rng.lognormal(0.0, WEIGHT_SPREAD, (n, n))
    within_count = max(float(P_WITHIN * (same.sum(axis=1).mean())), 1.0)
    between_count = max(float(P_BETWEEN * (other.sum(axis=1).mean())), 1.0)
    coupling = np.where(same & (draw < P_WITHIN), factor * WITHIN_STRENGTH / within_count, 0.0)
    coupling -= np.where(other & (draw < P_BETWEEN), factor * BETWEEN_STRENGTH / between_count, 0.0)
    # centre each unit's input at half activity, so the sigmoid works around its steep middle
    bias = -0.5 * coupling.sum(axis=1) + rng.normal(0.0, BIAS_SPREAD, n)
    return Network(coupling=frozen(coupling), bias=frozen(bias), module=frozen(module.astype(np.int64)))


def initial_state(cfg: EngineConfig, network: Network, construction: Generator, dynamics: Generator, moods: Generator) -> EngineState:
    """Run the burn-in from a random start so buffers are full and figures meaningful at tick 0."""
    n, window = cfg.units, cfg.history_window
    burn_in = max(cfg.burn_in, window)
    activity = construction.uniform(0.2, 0.8, n)
    state = EngineState(
        tick_number=-burn_in,
        activity=frozen(activity),
        adaptation=frozen(activity.copy()),
        history=frozen(np.tile(activity, (window, 1))),
        series=frozen(np.zeros((window, len(SERIES)))),
        log_temperature=0.0,
        stimulus_levels=frozen(np.zeros(len(STIMULUS_KINDS))),
        memory_traces=frozen(np.zeros((cfg.memory_capacity, n))),
        memory_strengths=frozen(np.zeros(cfg.memory_capacity)),
        memory_last=-1,
        memory_age=0,
        scup_offset=0.0,
        valence=0.0,
        mood="awakening",
        mood_ticks=0,
        scup_raw=0.0,
        scup=0.0,
        entropy=0.0,
        neural_activity=float(activity.mean()),
        consciousness_unity=0.0,
        memory_pressure=0.0,
        firing_rate=0.0,
        connectivity=0.0,
        multi_state=0.0,
        entanglement=0.0,
        lyapunov=0.0,
        fractal_dim=1.0,
    )
    quiet = StepInputs()
    for _ in range(burn_in):
        state = step(state, network, cfg, quiet, dynamics, moods).state
    # DAWN wakes at initial_scup: the offset bridges the computed SCUP and fades from there
    offset = float(np.clip(cfg.initial_scup - state.scup_raw, -SCUP_OFFSET_MAX, SCUP_OFFSET_MAX))
    series = state.series.copy()
    series[:, _SERIES_INDEX["scup"]] = np.clip(series[:, _SERIES_INDEX["scup"]] - state.scup_offset + offset, 0.0, 100.0)
    scup = float(np.clip(state.scup_raw + offset, 0.0, 100.0))
    series[-1, _SERIES_INDEX["scup"]] = scup
    return replace(
        state,
        tick_number=0,
        series=frozen(series),
        scup_offset=offset,
        scup=scup,
        valence=0.0,
        mood="awakening",
        mood_ticks=0,
    )


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function, clipped to stay finite and warning-free."""
    return 1.0 / (1.0 + np.exp(-np.clip(x, -SIGMOID_CLIP, SIGMOID_CLIP)))


def half_life_factor(half_life: float) -> float:
    """Per-tick multiplier that halves a quantity every `half_life` ticks."""
    return 0.5 ** (1.0 / half_life)


def step(
    state: EngineState,
    network: Network,
    cfg: EngineConfig,
    inputs: StepInputs,
    dynamics: Generator,
    moods: Generator,
) -> StepResult:
    """Advance one tick; equal state, inputs and generator states give bit-identical output."""
    tick_number = state.tick_number + 1

    # stimuli leave decaying traces, so a click is felt for about a second, not one tick
    received = np.zeros(len(STIMULUS_KINDS))
    for stimulus in inputs.stimuli:
        received[STIMULUS_KINDS.index(stimulus.kind)] += stimulus.intensity
    levels = np.minimum(state.stimulus_levels * half_life_factor(cfg.stimulus_half_life) + received, STIMULUS_LEVEL_MAX)
    excite, calm, chaos, focus = (float(v) for v in levels)

    # leaky rate network; the same number of draws every tick keeps runs with and without stimuli aligned
    private = dynamics.standard_normal(cfg.units)
    common = float(dynamics.standard_normal())
    temperature = math.exp(state.log_temperature)
    gain = cfg.gain / (temperature * (1.0 + CALM_GAIN * calm))
    drive = network.coupling @ state.activity + network.bias - ADAPTATION_STRENGTH * (state.adaptation - 0.5)
    drive += EXCITE_DRIVE * excite - CALM_DRIVE * calm
    noise = cfg.noise * temperature * (1.0 + CHAOS_NOISE * chaos) / (1.0 + FOCUS_QUIET * focus)
    target = sigmoid(gain * drive + noise * private + FOCUS_COMMON * focus * common)
    activity = (1.0 - cfg.leak) * state.activity + cfg.leak * target
    adaptation = state.adaptation + (activity - state.adaptation) / ADAPTATION_TAU
    history = np.concatenate((state.history[1:], activity[None, :]), axis=0)

    # figures of the network
    neural_activity = float(activity.mean())
    entropy = shannon_entropy_normalized(activity, cfg.entropy_bins)
    connectivity = mean_abs_offdiagonal(correlation_matrix(history))
    recent = correlation_matrix(history[-cfg.unity_window :])
    unity, multi_state = spectrum_figures(recent)
    half = cfg.units // 2
    entanglement = float(np.abs(recent[:half, half:]).mean())

    # memory: traces fade; novel patterns (or, failing that, a periodic sample) are written over the weakest slot
    relief = 1.0
    for impact in inputs.impacts:
        relief *= 1.0 - impact.memory_relief
    strengths = state.memory_strengths * half_life_factor(cfg.memory_half_life) * relief
    traces = state.memory_traces
    if state.memory_last >= 0:
        novelty = float(np.sqrt(np.mean((activity - traces[state.memory_last]) ** 2)))
    else:
        novelty = math.inf
    memory_last, memory_age = state.memory_last, state.memory_age + 1
    events: list = []
    if novelty > cfg.memory_novelty or memory_age >= cfg.memory_interval:
        memory_last = int(np.argmin(strengths))
        traces = traces.copy()
        traces[memory_last] = activity
        strengths = strengths.copy()
        strengths[memory_last] = 1.0
        memory_age = 0
        events.append(MemoryWritten(tick_number, memory_last, novelty if math.isfinite(novelty) else 1.0))
    memory_pressure = float(min(strengths.sum() / cfg.memory_capacity, 1.0))

    # entropy homeostat: the noise temperature creeps in the direction that brings entropy to its target
    log_temperature = state.log_temperature + cfg.homeostat_rate * (cfg.entropy_target - entropy)
    log_temperature += ENTROPY_DRIVE_GAIN * sum(impact.entropy_drive for impact in inputs.impacts)
    log_temperature = min(max(log_temperature, LOG_TEMPERATURE_MIN), LOG_TEMPERATURE_MAX)

    # SCUP with the design's weights
    unity_recent = np.append(state.series[-(STABILITY_WINDOW - 1) :, _SERIES_INDEX["consciousness_unity"]], unity)
    stability = 1.0 - min(float(unity_recent.std()) / UNITY_VARIABILITY_SCALE, 1.0)
    neural_unity = 0.5 * (neural_activity + unity)
    entropy_balance = 1.0 - abs(entropy - cfg.entropy_target)
    scup_raw = 100.0 * (0.3 * neural_unity + 0.2 * stability + 0.2 * (1.0 - memory_pressure) + 0.3 * entropy_balance)
    scup_offset = state.scup_offset * half_life_factor(cfg.scup_offset_half_life)
    scup_offset += sum(impact.scup_change for impact in inputs.impacts)
    scup_offset = min(max(scup_offset, -SCUP_OFFSET_MAX), SCUP_OFFSET_MAX)
    scup = min(max(scup_raw + scup_offset, 0.0), 100.0)

    # chaos figures of the network's own recent mean activity
    mean_series = np.append(state.series[1:, _SERIES_INDEX["neural_activity"]], neural_activity)
    lyapunov = min(max(lyapunov_rosenstein(mean_series), -LYAPUNOV_LIMIT), LYAPUNOV_LIMIT)
    fractal_dim = min(max(higuchi_fd(mean_series, HIGUCHI_KMAX), 1.0), 2.0)

    # mood
    valence = state.valence * half_life_factor(cfg.valence_half_life)
    for impact in inputs.impacts:
        valence += {"positive": VALENCE_STEP, "negative": -VALENCE_STEP}.get(impact.mood_influence, 0.0)
    valence = min(max(valence, -1.0), 1.0)
    mood = mood_next(
        state.mood,
        scup=scup,
        entropy=entropy,
        activity=neural_activity,
        valence=valence,
        rng=moods,
        mean_duration=cfg.mood_duration,
    )
    if mood != state.mood:
        events.append(MoodChanged(tick_number, state.mood, mood))
    if entropy - state.entropy >= SPIKE_RISE or (entropy > CHAOTIC_ABOVE >= state.entropy):
        events.append(EntropySpike(tick_number, state.entropy, entropy))

    row = np.empty(len(SERIES))
    row[_SERIES_INDEX["scup"]] = scup
    row[_SERIES_INDEX["entropy"]] = entropy
    row[_SERIES_INDEX["neural_activity"]] = neural_activity
    row[_SERIES_INDEX["consciousness_unity"]] = unity
    row[_SERIES_INDEX["memory_pressure"]] = memory_pressure
    series = np.concatenate((state.series[1:], row[None, :]), axis=0)

    new = EngineState(
        tick_number=tick_number,
        activity=frozen(activity),
        adaptation=frozen(adaptation),
        history=frozen(history),
        series=frozen(series),
        log_temperature=float(log_temperature),
        stimulus_levels=frozen(levels),
        memory_traces=frozen(traces) if traces is not state.memory_traces else traces,
        memory_strengths=frozen(strengths),
        memory_last=memory_last,
        memory_age=memory_age,
        scup_offset=float(scup_offset),
        valence=float(valence),
        mood=mood,
        mood_ticks=0 if mood != state.mood else state.mood_ticks + 1,
        scup_raw=float(scup_raw),
        scup=float(scup),
        entropy=entropy,
        neural_activity=neural_activity,
        consciousness_unity=unity,
        memory_pressure=memory_pressure,
        firing_rate=neural_activity * cfg.max_firing_rate,
        connectivity=connectivity,
        multi_state=multi_state,
        entanglement=entanglement,
        lyapunov=float(lyapunov),
        fractal_dim=float(fractal_dim),
    )
    return StepResult(state=new, tick=tick_of(new, inputs), events=tuple(events), applied_stimuli=inputs.stimuli)
