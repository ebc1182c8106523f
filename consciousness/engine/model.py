"""The model: the rate network, its figures, memory, SCUP and mood, advanced by the pure `step`.

The equations are in the README's model section; network.py holds the network's own step and Jacobian.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from numpy.random import Generator

from .config import NOISE_MAX, NOISE_MIN, EngineConfig
from .events import SPIKE_RISE, EntropySpike, MemoryWritten, MoodChanged
from .inputs import STIMULUS_KINDS, StepInputs
from .measures import active_rate, higuchi_pooled, increment_sums, rates_entropy, recurrent_share, renormalise
from .mood import AROUSAL, CHAOTIC_ABOVE, DORMANT_BELOW, mood_next
from .network import network_advance, rates_of
from .state import SERIES, EngineState, Network, StepResult, frozen
from .tick import tick_of
from .window import ones, sums_of, sums_slid, window_figures_of_sums

# stimuli: each kind leaves a trace that decays with stimulus_half_life; these scale its effect
EXCITE_DRIVE = 0.25  # common input per unit of excite trace
CALM_DRIVE = 0.6  # common input removed per unit of calm trace
CALM_GAIN = 1.5  # calm divides the gain by 1 + CALM_GAIN * calm: toward order
CHAOS_GAIN = 2.5  # chaos multiplies the gain by 1 + CHAOS_GAIN * tanh(chaos): into chaos
FOCUS_GAIN = 2.0  # focus divides the gain by 1 + FOCUS_GAIN * focus ...
FOCUS_QUIET = 3.0  # ... the private noise by 1 + FOCUS_QUIET * focus ...
FOCUS_DRIVE = 0.5  # ... adds this common input per unit of focus trace ...
FOCUS_COMMON = 0.3  # ... and a common fluctuation of this amplitude: the units move as one
STIMULUS_LEVEL_MAX = 3.0  # a flood of stimuli saturates instead of blowing the network up
MOOD_DRIVE = 0.15  # common input per unit of the mood's arousal: the mood acts back on the network

ENTROPY_DRIVE_GAIN = 0.5  # log-noise step of an impact with entropy_drive 1
VALENCE_STEP = 0.5  # valence added by a positive impact (subtracted by a negative one)
SCUP_IMPACT_MAX = 100.0
STABILITY_SCALE = 0.02  # lyapunov (per tick) at which consciousness stability is 1 / (1 + e)
HIGUCHI_KMAX = 10

_SERIES_INDEX = {name: i for i, name in enumerate(SERIES)}
_ACTIVITY_COLUMN = _SERIES_INDEX["neural_activity"]
_KS = np.arange(1, HIGUCHI_KMAX + 1)
# rows of the series gathered for the running increment sums: y[-k] for k = 1..kmax, then y[0], y[k]
_INCREMENT_ROWS = np.concatenate((-_KS, [0], _KS))
def initial_state(cfg: EngineConfig, network: Network, construction: Generator, dynamics: Generator, moods: Generator) -> EngineState:
    """Run the burn-in from a random start so buffers are full and figures meaningful at tick 0."""
    n, window = cfg.units, cfg.history_window
    burn_in = max(cfg.burn_in, window)
    currents = construction.normal(0.0, 0.5, n)
    activity = rates_of(currents)
    tangent = construction.standard_normal(n)
    history = np.tile(activity, (window, 1))
    state = EngineState(
        tick_number=-burn_in,
        activity=frozen(activity),
        currents=frozen(currents),
        tangent=frozen(tangent / np.linalg.norm(tangent)),
        lyapunov_logs=frozen(np.zeros(cfg.lyapunov_window)),
        history=frozen(history),
        series=frozen(np.zeros((window, len(SERIES)))),
        window_sums=frozen(sums_of(history, cfg.unity_window)),
        increment_sums=frozen(np.zeros(HIGUCHI_KMAX)),
        log_noise=math.log(cfg.noise),
        stimulus_levels=frozen(np.zeros(len(STIMULUS_KINDS))),
        memory_traces=frozen(np.zeros((cfg.memory_capacity, n))),
        memory_strengths=frozen(np.zeros(cfg.memory_capacity)),
        memory_last=-1,
        memory_age=0,
        scup_impact=0.0,
        valence=0.0,
        mood="awakening",
        mood_ticks=0,
        stability=0.5,
        scup=cfg.initial_scup,
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
    # tick 0 is the state DAWN wakes in: SCUP initial_scup (the seed's constructor value), mood from it
    series = state.series.copy()
    series[-1, _SERIES_INDEX["scup"]] = cfg.initial_scup
    return replace(
        state,
        tick_number=0,
        series=frozen(series),
        scup=cfg.initial_scup,
        valence=0.0,
        mood="dormant" if cfg.initial_scup < DORMANT_BELOW else "awakening",
        mood_ticks=0,
    )


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
    n = cfg.units

    # stimuli leave decaying traces, so a click is felt for about a second, not one tick
    fade = half_life_factor(cfg.stimulus_half_life)
    received = [level * fade for level in state.stimulus_levels.tolist()]
    for stimulus in inputs.stimuli:
        received[STIMULUS_KINDS.index(stimulus.kind)] += stimulus.intensity
    excite, calm, chaos, focus = (min(level, STIMULUS_LEVEL_MAX) for level in received)
    levels = np.array((excite, calm, chaos, focus))

    # the same number of draws every tick keeps runs with and without stimuli aligned
    draws = dynamics.standard_normal(n + 1)
    private, common_draw = draws[:n], float(draws[n])
    gain = cfg.gain * (1.0 + CHAOS_GAIN * math.tanh(chaos)) / (1.0 + CALM_GAIN * calm + FOCUS_GAIN * focus)
    common = EXCITE_DRIVE * excite - CALM_DRIVE * calm + FOCUS_DRIVE * focus + MOOD_DRIVE * AROUSAL[state.mood]
    common += FOCUS_COMMON * focus * common_draw
    noise = (math.exp(state.log_noise) / (1.0 + FOCUS_QUIET * focus)) * private

    # Benettin: carry the tangent vector through this step's Jacobian, renormalise, keep the log growth
    currents, recurrent, pushed = network_advance(
        network, state.currents, state.tangent, gain=gain, common=common, noise=noise, leak=cfg.leak
    )
    tangent, log_growth = renormalise(pushed)
    lyapunov_logs = np.concatenate((state.lyapunov_logs[1:], (log_growth,)))
    lyapunov = float(lyapunov_logs @ ones(cfg.lyapunov_window)) / cfg.lyapunov_window
    activity = rates_of(currents)

    # window sums: add the new row, drop the ones leaving; recomputed exactly once a window against drift
    neural_activity = float(activity @ ones(n)) / n
    history = np.concatenate((state.history[1:], activity[None, :]), axis=0)
    if tick_number % cfg.history_window == 0:
        window_sums = sums_of(history, cfg.unity_window)
    else:
        leaving = state.history[[0, -cfg.unity_window]]
        window_sums = sums_slid(state.window_sums, activity, neural_activity, leaving)

    # figures of the network
    entropy = rates_entropy(activity, cfg.entropy_bins)
    firing_rate = cfg.max_firing_rate * active_rate(activity)
    connectivity, unity, multi_state = window_figures_of_sums(window_sums, cfg.history_window, cfg.unity_window)
    entanglement = recurrent_share(recurrent, common, noise)

    # memory: traces fade; novel patterns (or, failing that, a periodic sample) are written over the weakest slot
    relief = 1.0
    for impact in inputs.impacts:
        relief *= 1.0 - impact.memory_relief
    strengths = state.memory_strengths * (half_life_factor(cfg.memory_half_life) * relief)
    traces = state.memory_traces
    if state.memory_last >= 0:
        gap = activity - traces[state.memory_last]
        novelty = math.sqrt(float(gap @ gap) / n)
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
    memory_pressure = min(float(strengths @ ones(cfg.memory_capacity)) / cfg.memory_capacity, 1.0)

    # entropy homeostat: the noise creeps in the direction that brings entropy to its target (noise spreads
    # the rates of an ordered network; it cannot undo chaos, so the chaos stimulus still raises entropy)
    log_noise = state.log_noise + cfg.homeostat_rate * (cfg.entropy_target - entropy)
    log_noise += ENTROPY_DRIVE_GAIN * sum(impact.entropy_drive for impact in inputs.impacts)
    log_noise = min(max(log_noise, math.log(NOISE_MIN)), math.log(NOISE_MAX))

    # SCUP with the seed's weights; process impacts add points that fade
    stability = 1.0 / (1.0 + math.exp(min(lyapunov / STABILITY_SCALE, 700.0)))
    entropy_balance = 1.0 - abs(entropy - cfg.entropy_target)
    scup_formula = 100.0 * (0.3 * neural_activity + 0.2 * stability + 0.2 * (1.0 - memory_pressure) + 0.3 * entropy_balance)
    scup_impact = state.scup_impact * half_life_factor(cfg.scup_impact_half_life)
    scup_impact += sum(impact.scup_change for impact in inputs.impacts)
    scup_impact = min(max(scup_impact, -SCUP_IMPACT_MAX), SCUP_IMPACT_MAX)
    scup = min(max(scup_formula + scup_impact, 0.0), 100.0)

    # fractal dimension of the neural_activity series over the history window, from running increment sums
    figures = {"scup": scup, "entropy": entropy, "neural_activity": neural_activity,
               "consciousness_unity": unity, "memory_pressure": memory_pressure, "multi_state": multi_state}
    series = np.concatenate((state.series[1:], np.array([[figures[name] for name in SERIES]])), axis=0)
    if tick_number % cfg.history_window == 0:
        increments = increment_sums(series[:, _ACTIVITY_COLUMN], HIGUCHI_KMAX)
    else:
        # the pairs (y[-k], new) enter, the pairs (y[0], y[k]) leave: one gather, one subtraction, one abs
        gaps = state.series[_INCREMENT_ROWS, _ACTIVITY_COLUMN]
        gaps[:HIGUCHI_KMAX] -= neural_activity
        gaps[HIGUCHI_KMAX:] -= gaps[HIGUCHI_KMAX]
        np.abs(gaps, out=gaps)
        increments = state.increment_sums + (gaps[:HIGUCHI_KMAX] - gaps[HIGUCHI_KMAX + 1 :])
    fractal_dim = higuchi_pooled(increments, cfg.history_window)

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
        stability=stability,
    )
    if mood != state.mood:
        events.append(MoodChanged(tick_number, state.mood, mood))
    if entropy - state.entropy >= SPIKE_RISE or (entropy > CHAOTIC_ABOVE >= state.entropy):
        events.append(EntropySpike(tick_number, state.entropy, entropy))

    new = EngineState(
        tick_number=tick_number,
        activity=frozen(activity),
        currents=frozen(currents),
        tangent=frozen(tangent),
        lyapunov_logs=frozen(lyapunov_logs),
        history=frozen(history),
        series=frozen(series),
        window_sums=frozen(window_sums),
        increment_sums=frozen(increments),
        log_noise=float(log_noise),
        stimulus_levels=frozen(levels),
        memory_traces=frozen(traces) if traces is not state.memory_traces else traces,
        memory_strengths=frozen(strengths),
        memory_last=memory_last,
        memory_age=memory_age,
        scup_impact=float(scup_impact),
        valence=float(valence),
        mood=mood,
        mood_ticks=0 if mood != state.mood else state.mood_ticks + 1,
        stability=float(stability),
        scup=float(scup),
        entropy=entropy,
        neural_activity=neural_activity,
        consciousness_unity=unity,
        memory_pressure=memory_pressure,
        firing_rate=firing_rate,
        connectivity=connectivity,
        multi_state=multi_state,
        entanglement=entanglement,
        lyapunov=lyapunov,
        fractal_dim=float(fractal_dim),
    )
    return StepResult(state=new, tick=tick_of(new, inputs), events=tuple(events), applied_stimuli=inputs.stimuli)

