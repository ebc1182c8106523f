"""The model's dynamics: its order-chaos transition, its exponent checked two ways, the ten-minute mix."""

import copy
import math
from dataclasses import replace

import numpy as np
import pytest

from consciousness.engine import MOODS, Engine, EngineConfig, StepInputs, step
from consciousness.engine.measures import connectivity, higuchi_fd, higuchi_pooled, increment_sums, window_figures
from consciousness.engine.state import SERIES, frozen

from .scenarios import fields, held, mix_inputs, run_ticks

SEEDS = (1, 2, 3)


def mean_lyapunov(seed: int, inputs: list[StepInputs]) -> float:
    engine = Engine(EngineConfig.from_mapping({"seed": seed}))
    ticks = run_ticks(engine, inputs)
    return float(np.mean([t["subsystems"]["chaos"]["lyapunov"] for t in ticks[-1000:]]))


@pytest.mark.parametrize("seed", SEEDS)
def test_chaos_held_on_makes_the_exponent_positive_and_calm_negative(seed):
    chaos = mean_lyapunov(seed, held("chaos", 0.5, 1500))
    quiet = mean_lyapunov(seed, [StepInputs()] * 1500)
    calm = mean_lyapunov(seed, held("calm", 0.5, 1500))
    assert chaos > 0.05
    assert calm < quiet < 0 < chaos


def two_copy_logs(engine: Engine, inputs: list[StepInputs], eps: float = 1e-7) -> tuple[np.ndarray, np.ndarray]:
    """(finite-difference log growth, tangent log growth) per tick along the engine's own trajectory: a twin
    displaced by eps, stepped with the same noise draws, its separation renormalised to eps every tick."""
    direction = np.ones(engine.cfg.units) / math.sqrt(engine.cfg.units)
    finite, tangent = [], []
    for tick_inputs in inputs:
        state = engine.state
        twin = replace(state, currents=frozen(state.currents + eps * direction))
        dynamics, moods = copy.deepcopy(engine.rngs["dynamics"]), copy.deepcopy(engine.rngs["mood"])
        twin_next = step(twin, engine.network, engine.cfg, tick_inputs, dynamics, moods).state
        reference = engine.advance(tick_inputs).state
        gap = twin_next.currents - reference.currents
        distance = float(np.linalg.norm(gap))
        finite.append(math.log(distance / eps))
        tangent.append(reference.lyapunov_logs[-1])
        direction = gap / distance
    return np.array(finite), np.array(tangent)


@pytest.mark.parametrize("kind", ["chaos", "quiet", "calm"])
def test_tangent_exponent_agrees_with_two_copies_on_the_same_noise(kind):
    engine = Engine(EngineConfig.from_mapping({"seed": 4}))
    inputs = [StepInputs()] * 600 if kind == "quiet" else held(kind, 0.5, 600)
    run_ticks(engine, inputs[:200])
    finite, tangent = two_copy_logs(engine, inputs[200:])
    # after both vectors have aligned with the most expanding direction, they grow alike tick by tick
    assert np.sign(finite[100:].mean()) == np.sign(tangent[100:].mean())
    assert finite[100:].mean() == pytest.approx(tangent[100:].mean(), abs=0.01 + 0.02 * abs(tangent[100:].mean()))


def test_the_exponent_is_the_mean_over_its_window_of_the_tangent_growth(cfg):
    engine = Engine(cfg)
    run_ticks(engine, held("chaos", 0.5, 150))
    logs = engine.state.lyapunov_logs
    assert logs.shape == (cfg.lyapunov_window,)
    assert engine.state.lyapunov == pytest.approx(logs.mean(), abs=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_focus_drives_entropy_below_the_chaos_engine_trigger(seed):
    # config.yaml's chaos_engine fires on entropy_below: 0.2; focus must be able to get there
    engine = Engine(EngineConfig.from_mapping({"seed": seed}))
    ticks = run_ticks(engine, held("focus", 0.5, 200))
    assert min(t["entropy"] for t in ticks) < 0.2
    quiet = run_ticks(Engine(EngineConfig.from_mapping({"seed": seed})), [StepInputs()] * 200)
    assert min(t["entropy"] for t in quiet) > 0.2


def test_the_mood_acts_back_through_its_arousal(cfg):
    engine = Engine(cfg)
    activity = {}
    for mood in ("excited", "serene"):
        state = replace(engine.state, mood=mood)
        dynamics, moods = copy.deepcopy(engine.rngs["dynamics"]), copy.deepcopy(engine.rngs["mood"])
        activity[mood] = step(state, engine.network, cfg, StepInputs(), dynamics, moods).state.neural_activity
    assert activity["excited"] > activity["serene"] + 0.02


@pytest.fixture(scope="module")
def mix():
    engine = Engine(EngineConfig.from_mapping({"seed": 42}))
    ticks = run_ticks(engine, mix_inputs())
    return engine, ticks


UNIT_FIELDS = ("entropy", "neural_activity", "consciousness_unity", "memory_pressure", "connectivity", "multi-state", "entanglement")


def test_the_ten_minute_mix_moves_every_unit_field_over_a_good_part_of_its_range(mix):
    _engine, ticks = mix
    series = fields(ticks)
    spans = {name: float(np.percentile(series[name], 95) - np.percentile(series[name], 5)) for name in UNIT_FIELDS}
    assert spans["neural_activity"] >= 0.3
    assert all(span >= 0.25 for span in spans.values()), spans
    assert np.percentile(series["scup"], 95) - np.percentile(series["scup"], 5) >= 25


def test_no_two_figures_of_the_mix_correlate_above_0_9(mix):
    _engine, ticks = mix
    series = fields(ticks)
    names = list(series)
    corr = np.corrcoef(np.array([series[name] for name in names]))
    pairs = {(names[i], names[j]): corr[i, j] for i in range(len(names)) for j in range(i + 1, len(names))}
    assert max(abs(r) for r in pairs.values()) < 0.9, {k: round(v, 3) for k, v in pairs.items() if abs(v) >= 0.9}


def test_firing_rate_is_not_a_multiple_of_neural_activity(mix):
    _engine, ticks = mix
    series = fields(ticks)
    ratio = series["firing_rate"] / series["neural_activity"]
    assert ratio.std() > 0.1 * ratio.mean()


def test_every_mood_occurs_in_the_mix(mix):
    _engine, ticks = mix
    assert {t["mood"] for t in ticks} == set(MOODS)


def test_the_incremental_window_figures_equal_their_definitions(mix):
    engine, ticks = mix
    state, cfg = engine.state, engine.cfg
    assert state.tick_number % cfg.history_window != 0  # the running sums, not the exact recomputation
    assert state.connectivity == pytest.approx(connectivity(state.history), abs=1e-9)
    figures = window_figures(state.history[-cfg.unity_window :])
    assert state.consciousness_unity == pytest.approx(figures["consciousness_unity"], abs=1e-9)
    assert state.multi_state == pytest.approx(figures["multi-state"], abs=1e-9)
    activity = state.series[:, SERIES.index("neural_activity")]
    assert state.fractal_dim == pytest.approx(higuchi_pooled(increment_sums(activity, 10), cfg.history_window), abs=1e-9)
    # and the pooled estimate is Higuchi's own, up to the weighting of the offsets
    assert state.fractal_dim == pytest.approx(higuchi_fd(activity, 10), abs=0.05)
    assert ticks[-1]["subsystems"]["chaos"]["fractal_dim"] == state.fractal_dim
