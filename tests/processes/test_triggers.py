"""Tick rules: each condition, cooldowns in ticks, and a saved state that resumes exactly."""

from pathlib import Path

import pytest

from consciousness.engine import Engine, EngineConfig, StepInputs
from dawn_site.config import config_load
from processes.triggers import TriggerRule, TriggerRules
from tests.engine.scenarios import held, run_ticks

BASE_DIR = Path(__file__).resolve().parents[2]

RULES = {
    "neural_analyzer": {"every": 5},
    "chaos_engine": {"entropy_below": 0.3, "cooldown": 7},
    "dream_generator": {"mood": "contemplative", "cooldown": 4},
    "consciousness_processor": {"scup_change": 5.0, "window": 6, "cooldown": 3},
}


def ticks(count: int) -> list[dict]:
    moods = ("curious", "contemplative", "serene")
    return [
        {"tick_number": n, "scup": 50 + 8 * ((n * 7) % 5) / 4, "entropy": 0.1 + ((n * 13) % 9) / 10, "mood": moods[n % 3]}
        for n in range(1, count + 1)
    ]


def fired(rules: TriggerRules, series: list[dict]) -> list[tuple[int, str]]:
    return [(tick["tick_number"], script) for tick in series for script, _rule in rules.fire(tick)]


def test_each_condition_fires_and_cooldowns_hold():
    events = fired(TriggerRules(RULES), ticks(60))
    by_script = {s: [n for n, name in events if name == s] for s in RULES}
    assert by_script["neural_analyzer"] == list(range(5, 61, 5))
    for script, spec in RULES.items():
        gaps = [b - a for a, b in zip(by_script[script], by_script[script][1:])]
        assert by_script[script] and all(g >= spec.get("cooldown", 0) for g in gaps), script


@pytest.mark.parametrize("cut", [1, 13, 29, 47])
def test_rules_rebuilt_from_their_saved_state_fire_as_the_uninterrupted_ones(cut):
    series = ticks(80)
    uninterrupted = fired(TriggerRules(RULES), series)
    first = TriggerRules(RULES)
    before = fired(first, series[:cut])
    after = fired(TriggerRules(RULES, state=first.state()), series[cut:])
    assert before + after == uninterrupted
    assert fired(TriggerRules(RULES), series[cut:]) != uninterrupted[len(before):]  # the state matters


def test_labels_read_as_the_rule():
    assert TriggerRule(every=50).label == "every 50 ticks"
    assert TriggerRule(entropy_below=0.2, cooldown=50).label == "entropy below 0.2"
    assert TriggerRule(mood="contemplative").summary() == {"mood": "contemplative", "window": 20, "cooldown": 0}


@pytest.mark.parametrize("seed", (1, 2, 3))
def test_config_yaml_chaos_engine_rule_fires_under_held_focus(seed):
    # the rule as shipped (entropy_below 0.2, its cooldown), fed the ticks of a seeded engine held in focus
    config = config_load(BASE_DIR / "config.yaml")
    rules = TriggerRules({"chaos_engine": config["processes"]["auto_triggers"]["chaos_engine"]})
    engine = Engine(EngineConfig.from_mapping({**config["consciousness"], "seed": seed}))
    focus_ticks = run_ticks(engine, held("focus", 0.5, 300))
    focused = [script for tick in focus_ticks for script, _rule in rules.fire(tick)]
    assert "chaos_engine" in focused
    # and the quiet engine, at its entropy target, does not fire it
    quiet_rules = TriggerRules({"chaos_engine": config["processes"]["auto_triggers"]["chaos_engine"]})
    quiet = Engine(EngineConfig.from_mapping({**config["consciousness"], "seed": seed}))
    assert not [s for tick in run_ticks(quiet, [StepInputs()] * 300) for s, _rule in quiet_rules.fire(tick)]
