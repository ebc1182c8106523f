"""The Engine: determinism, snapshots, the tick format, and the effect of stimuli and impacts."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from consciousness.engine import (
    MOODS,
    SNAPSHOT_VERSION,
    Engine,
    EngineConfig,
    Impact,
    MoodChanged,
    StepInputs,
    Stimulus,
)

from consciousness.engine.model import STABILITY_SCALE

from .scenarios import held

ROOT = Path(__file__).resolve().parents[2]


def run(engine: Engine, ticks: int, inputs=None) -> list[dict]:
    return [engine.advance(inputs(i) if inputs else StepInputs(timestamp=float(i))).tick for i in range(ticks)]


def test_construction_burns_in_and_starts_at_tick_zero_at_initial_scup(cfg):
    engine = Engine(cfg)
    assert engine.state.tick_number == 0
    assert engine.state.scup == cfg.initial_scup
    assert engine.state.mood == "awakening"
    # the buffers hold real dynamics, not the constant start
    assert np.all(engine.state.history.std(axis=0) > 0)
    assert engine.advance().tick["tick_number"] == 1


def test_initial_scup_is_the_state_before_the_first_tick_and_sets_its_mood():
    # as the seed's constructor: tick 0 carries initial_scup, and its mood follows the rule (dormant under 30)
    for initial, mood in ((80.0, "awakening"), (20.0, "dormant")):
        engine = Engine(EngineConfig.from_mapping({"initial_scup": initial, "seed": 1}))
        assert (engine.state.scup, engine.state.mood) == (initial, mood)
        assert engine.context()["scup"] == initial == engine.context()["series"]["scup"][-1]
        # from the first tick on, SCUP is the seed's formula of the state, whatever initial_scup was
        assert engine.advance().state.scup == pytest.approx(scup_formula(engine.state, engine.cfg), abs=1e-9)


def scup_formula(state, cfg) -> float:
    """The seed's weights: neural activity 0.3, stability 0.2, memory integration 0.2, entropy balance 0.3."""
    balance = 1.0 - abs(state.entropy - cfg.entropy_target)
    return 100 * (0.3 * state.neural_activity + 0.2 * state.stability + 0.2 * (1 - state.memory_pressure) + 0.3 * balance)


def test_scup_is_the_seeds_weighted_sum_on_every_tick_without_impacts(cfg):
    engine = Engine(cfg)
    states = [engine.advance(i).state for i in held("chaos", 0.5, 100) + held("calm", 0.5, 100)]
    assert all(s.scup == pytest.approx(scup_formula(s, cfg), abs=1e-9) for s in states)
    # stability is the logistic of the exponent: 1/2 at the edge of chaos, toward 1 in order, 0 in chaos
    assert all(s.stability == pytest.approx(1 / (1 + math.exp(s.lyapunov / STABILITY_SCALE))) for s in states)


def test_same_seed_same_ticks_bit_for_bit(cfg):
    assert run(Engine(cfg), 300) == run(Engine(cfg), 300)


def test_seed_argument_overrides_the_config(cfg):
    assert run(Engine(cfg, seed=7), 50) == run(Engine(EngineConfig.from_mapping({"seed": 7})), 50)


def test_different_seeds_differ(cfg):
    a, b = run(Engine(cfg, seed=1), 50), run(Engine(cfg, seed=2), 50)
    assert [t["entropy"] for t in a] != [t["entropy"] for t in b]
    assert [t["scup"] for t in a] != [t["scup"] for t in b]


def varied_inputs(i: int) -> StepInputs:
    stimuli = (Stimulus("chaos", 0.7),) if i % 37 == 0 else (Stimulus("excite", 0.5, "r"),) if i % 11 == 0 else ()
    impacts = (Impact(scup_change=2.0, mood_influence="positive", memory_relief=0.3, entropy_drive=0.2, source="p"),) if i % 23 == 0 else ()
    return StepInputs(timestamp=1000.0 + i / 10, stimuli=stimuli, impacts=impacts, active_processes=("neural_analyzer",) if i % 2 else ())


def test_snapshot_round_trip_through_json_continues_bit_for_bit(cfg):
    original = Engine(cfg)
    run(original, 100, varied_inputs)
    restored = Engine.from_snapshot(json.loads(json.dumps(original.snapshot())), cfg)
    assert restored.state.tick_number == original.state.tick_number == 100
    assert run(restored, 100, varied_inputs) == run(original, 100, varied_inputs)
    assert json.dumps(restored.snapshot()) == json.dumps(original.snapshot())


def test_snapshot_is_plain_json_with_version_seed_and_rng_states(cfg):
    snapshot = Engine(cfg, seed=2**63 - 1).snapshot()
    text = json.dumps(snapshot, allow_nan=False)
    assert json.loads(text) == snapshot
    assert snapshot["version"] == SNAPSHOT_VERSION == 3 and snapshot["seed"] == 2**63 - 1
    assert set(snapshot["rng"]) == {"construction", "dynamics", "mood"}
    assert isinstance(snapshot["rng"]["dynamics"]["state"], str)


def mangled(snapshot: dict, path: tuple, value) -> dict:
    copy = json.loads(json.dumps(snapshot))
    target = copy
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return copy


@pytest.mark.parametrize(
    "path, value, message",
    [
        (("version",), 99, "version"),
        (("version",), KeyError, "version"),
        (("state", "history"), [[0.5]], "history"),
        (("state", "mood"), "bored", "mood"),
        (("state", "scup"), "high", "scup"),
        (("state", "activity"), KeyError, "activity"),
        (("rng", "dynamics", "state"), "not a number", "dynamics"),
        (("rng", "mood"), KeyError, "rng"),
        (("network",), KeyError, "network"),
        (("structure", "units"), 32, "units"),
        (("state", "activity", "base64"), "not base64!", "activity"),
        (("state", "activity", "shape"), [3], "activity"),
        (("state", "activity", "dtype"), "<f4", "activity"),
        (("network", "coupling", "base64"), "AAAA", "coupling"),
    ],
)
def test_bad_snapshots_raise_value_error(cfg, path, value, message):
    snapshot = Engine(cfg).snapshot()
    with pytest.raises(ValueError, match=message):
        Engine.from_snapshot(mangled(snapshot, path, value), cfg)


def test_arrays_as_plain_lists_load_too(cfg):
    original = Engine(cfg)
    run(original, 30)
    snapshot = original.snapshot()
    snapshot["state"]["history"] = original._state.history.tolist()
    snapshot["network"]["coupling"] = original.network.coupling.tolist()
    restored = Engine.from_snapshot(json.loads(json.dumps(snapshot)), cfg)
    assert run(restored, 20) == run(original, 20)


def test_non_dict_snapshot_raises_value_error(cfg):
    with pytest.raises(ValueError):
        Engine.from_snapshot([1, 2, 3], cfg)  # type: ignore[arg-type]


def test_snapshot_from_another_shape_is_refused(cfg):
    snapshot = Engine(cfg).snapshot()
    with pytest.raises(ValueError, match="units"):
        Engine.from_snapshot(snapshot, EngineConfig.from_mapping({"units": 16}))


def test_tick_echoes_timestamp_and_active_processes(cfg):
    tick = Engine(cfg).advance(StepInputs(timestamp=1234567890.123, active_processes=("neural_analyzer",))).tick
    assert tick["timestamp"] == 1234567890.123
    assert tick["active_processes"] == ["neural_analyzer"]
    assert set(tick["subsystems"]["consciousness"]) == {"multi-state", "entanglement"}


def test_state_arrays_are_read_only(cfg):
    engine = Engine(cfg)
    with pytest.raises(ValueError):
        engine.state.activity[0] = 1.0


def compare_run(cfg, stimulus: Stimulus | None = None, impact: Impact | None = None, ticks: int = 20):
    """Ticks of two engines of the same seed, the second receiving `stimulus`/`impact` at its first tick."""
    plain, pushed = Engine(cfg), Engine(cfg)
    a = run(plain, ticks)
    first = StepInputs(stimuli=(stimulus,) if stimulus else (), impacts=(impact,) if impact else ())
    b = [pushed.advance(first).tick] + run(pushed, ticks - 1)
    return a, b


def mean_of(ticks: list[dict], key: str) -> float:
    return float(np.mean([t[key] for t in ticks]))


def test_excite_raises_neural_activity(cfg):
    plain, excited = compare_run(cfg, Stimulus("excite", 1.0))
    assert mean_of(excited, "neural_activity") > mean_of(plain, "neural_activity") + 0.05


def test_calm_lowers_neural_activity(cfg):
    plain, calmed = compare_run(cfg, Stimulus("calm", 1.0))
    assert mean_of(calmed, "neural_activity") < mean_of(plain, "neural_activity") - 0.05


def test_chaos_raises_entropy(cfg):
    plain, chaotic = compare_run(cfg, Stimulus("chaos", 1.0))
    assert mean_of(chaotic, "entropy") > mean_of(plain, "entropy") + 0.1


def test_focus_raises_unity(cfg):
    plain, focused = compare_run(cfg, Stimulus("focus", 1.0), ticks=40)
    assert mean_of(focused, "consciousness_unity") > mean_of(plain, "consciousness_unity")


def test_applied_stimuli_are_reported(cfg):
    stimuli = (Stimulus("excite", 0.3, "a"), Stimulus("calm", 0.2))
    assert Engine(cfg).advance(StepInputs(stimuli=stimuli)).applied_stimuli == stimuli


def test_scup_change_shifts_scup(cfg):
    plain, lifted = compare_run(cfg, impact=Impact(scup_change=10.0), ticks=5)
    assert lifted[0]["scup"] - plain[0]["scup"] == pytest.approx(10.0, abs=1e-9)
    # the lift fades, slowly
    assert 9.0 < lifted[4]["scup"] - plain[4]["scup"] < 10.0


def test_memory_relief_lowers_memory_pressure(cfg):
    plain, relieved = compare_run(cfg, impact=Impact(memory_relief=0.5), ticks=3)
    assert relieved[0]["memory_pressure"] < 0.6 * plain[0]["memory_pressure"]


def test_entropy_drive_moves_entropy(cfg):
    plain, driven = compare_run(cfg, impact=Impact(entropy_drive=1.0), ticks=30)
    assert mean_of(driven, "entropy") > mean_of(plain, "entropy")


def test_entropy_homeostat_holds_the_target():
    for target in (0.35, 0.6):
        engine = Engine(EngineConfig.from_mapping({"entropy_target": target, "seed": 5}))
        assert mean_of(run(engine, 1000)[200:], "entropy") == pytest.approx(target, abs=0.05)


def test_sustained_negative_impacts_make_dawn_dormant(cfg):
    engine = Engine(cfg)
    ticks = run(engine, 10, lambda i: StepInputs(impacts=(Impact(scup_change=-5.0, mood_influence="negative"),)))
    assert ticks[-1]["scup"] < 30 and ticks[-1]["mood"] == "dormant"


def test_mood_changes_are_reported_as_events(cfg):
    engine = Engine(cfg)
    for _ in range(600):
        result = engine.advance()
        changes = [e for e in result.events if isinstance(e, MoodChanged)]
        if changes:
            assert changes[0].mood == result.tick["mood"] != changes[0].previous
            return
    pytest.fail("no mood change in 600 ticks")


def test_context_is_json_safe_and_sized(cfg):
    engine = Engine(cfg)
    run(engine, 5)
    context = engine.context(128)
    assert json.loads(json.dumps(context, allow_nan=False)) == context
    assert context["tick_number"] == 5 and context["units"] == cfg.units
    assert len(context["activity"]) == 128 and all(len(row) == cfg.units for row in context["activity"])
    assert context["activity"][-1] == engine.state.activity.tolist()
    assert set(context["series"]) == {
        "scup", "entropy", "neural_activity", "consciousness_unity", "memory_pressure", "multi_state",
    }
    assert all(len(v) == 128 for v in context["series"].values())
    assert context["series"]["scup"][-1] == context["scup"]
    assert context["series"]["multi_state"][-1] == engine.state.multi_state
    assert context["mood"] in MOODS
    assert len(engine.context(10_000)["activity"]) == cfg.history_window


def test_engine_imports_without_django():
    code = (
        "import sys; sys.modules['django'] = None\n"
        "import consciousness.engine as e\n"
        "engine = e.Engine(e.EngineConfig.from_mapping({'seed': 1, 'burn_in': 256}))\n"
        "engine.advance()\n"
        "assert not any(m == 'django' or m.startswith('django.') for m in sys.modules if sys.modules[m] is not None)\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
