"""EngineConfig, Stimulus and Impact validation."""

import math

import pytest

from consciousness.engine import EngineConfig, Impact, StepInputs, Stimulus


def test_from_mapping_reads_the_config_yaml_section():
    cfg = EngineConfig.from_mapping({"tick_rate": 10, "initial_scup": 60, "entropy_target": 0.4, "seed": 7, "units": 16})
    assert (cfg.initial_scup, cfg.entropy_target, cfg.seed, cfg.units) == (60.0, 0.4, 7, 16)


def test_from_mapping_defaults():
    cfg = EngineConfig.from_mapping({})
    assert (cfg.initial_scup, cfg.entropy_target, cfg.seed) == (50.0, 0.5, 0)


def test_config_is_frozen():
    with pytest.raises(AttributeError):
        EngineConfig.from_mapping({}).seed = 3


@pytest.mark.parametrize("key", ["tick_rat", "temperature", "Seed"])
def test_unknown_keys_are_rejected_by_name(key):
    with pytest.raises(ValueError, match=key):
        EngineConfig.from_mapping({key: 1})


@pytest.mark.parametrize(
    "key, value",
    [
        ("initial_scup", 101),
        ("initial_scup", -1),
        ("entropy_target", 1.5),
        ("entropy_target", math.nan),
        ("seed", -1),
        ("seed", 1.5),
        ("seed", True),
        ("units", 2),
        ("units", "32"),
        ("leak", 0),
        ("history_window", 10),
        ("memory_half_life", -3.0),
        ("gain", math.inf),
    ],
)
def test_impossible_values_are_rejected_by_name(key, value):
    with pytest.raises(ValueError, match=key):
        EngineConfig.from_mapping({key: value})


def test_inconsistent_values_are_rejected_by_name():
    with pytest.raises(ValueError, match="unity_window"):
        EngineConfig.from_mapping({"history_window": 64, "lyapunov_window": 64, "unity_window": 100})
    with pytest.raises(ValueError, match="lyapunov_window"):
        EngineConfig.from_mapping({"history_window": 64, "lyapunov_window": 100})


def test_stimulus_from_mapping():
    assert Stimulus.from_mapping({"kind": "focus", "intensity": 1, "ref": "x"}) == Stimulus("focus", 1.0, "x")


@pytest.mark.parametrize(
    "mapping, key",
    [
        ({"kind": "tickle", "intensity": 0.5}, "kind"),
        ({"kind": "excite", "intensity": 7}, "intensity"),
        ({"kind": "excite", "intensity": math.nan}, "intensity"),
        ({"kind": "excite", "intensity": "0.5"}, "intensity"),
        ({"kind": "excite", "intensity": True}, "intensity"),
        ({"kind": "excite"}, "intensity"),
        ({"kind": "excite", "intensity": 0.5, "power": 1}, "power"),
    ],
)
def test_bad_stimuli_are_rejected_by_name(mapping, key):
    with pytest.raises(ValueError, match=key):
        Stimulus.from_mapping(mapping)


def test_impact_from_mapping_of_a_process_result():
    impact = Impact.from_mapping({"scup_change": 2.3, "mood_influence": "positive", "memory_relief": 0.4, "source": "memory_consolidator_001"})
    assert impact == Impact(2.3, "positive", 0.4, 0.0, "memory_consolidator_001")


@pytest.mark.parametrize(
    "mapping, key",
    [
        ({"scup_change": math.inf}, "scup_change"),
        ({"mood_influence": "happy"}, "mood_influence"),
        ({"memory_relief": 1.5}, "memory_relief"),
        ({"entropy_drive": -2}, "entropy_drive"),
        ({"visualization": "..."}, "visualization"),
    ],
)
def test_bad_impacts_are_rejected_by_name(mapping, key):
    with pytest.raises(ValueError, match=key):
        Impact.from_mapping(mapping)


def test_step_inputs_reject_a_non_finite_timestamp():
    with pytest.raises(ValueError, match="timestamp"):
        StepInputs(timestamp=math.nan)
