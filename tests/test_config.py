"""config.yaml is validated on load: mistakes stop start-up with a message naming the file and the key."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from dawn_site.config import ConfigError, config_load, config_parse

ROOT = Path(__file__).resolve().parent.parent


def write_config(tmp_path: Path, data) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def test_shipped_config_loads_with_the_seed_values():
    config = config_load(ROOT / "config.yaml")
    assert config["consciousness"]["tick_rate"] == 10
    assert config["consciousness"]["initial_scup"] == 50
    assert config["consciousness"]["entropy_target"] == 0.5
    assert config["processes"]["max_concurrent"] == 3
    assert config["processes"]["timeout"] == 30
    assert config["processes"]["auto_triggers"]["neural_analyzer"]["every"] == 50
    assert config["processes"]["auto_triggers"]["memory_consolidator"]["every"] == 100
    assert config["api"]["port"] == 8000


def test_impact_delay_defaults_and_is_bounded_by_what_a_resume_can_rebuild():
    assert config_parse({})["processes"]["impact_delay"] == 10
    assert config_parse({"processes": {"impact_delay": 128}})["processes"]["impact_delay"] == 128
    for bad in (0, 129, 2.5, "10", True):
        with pytest.raises(ConfigError, match="processes.impact_delay"):
            config_parse({"processes": {"impact_delay": bad}})


def test_missing_sections_take_defaults():
    config = config_parse({})
    assert config["consciousness"]["tick_rate"] == 10
    assert config["stream"]["slow_client_ticks"] == 50


@pytest.mark.parametrize(
    "data, key",
    [
        ({"consciousness": {"tick_rate": 0}}, "consciousness.tick_rate"),
        ({"consciousness": {"tick_rate": -5}}, "consciousness.tick_rate"),
        ({"consciousness": {"tick_rate": 1e9}}, "consciousness.tick_rate"),
        ({"consciousness": {"tick_rate": "fast"}}, "consciousness.tick_rate"),
        ({"consciousness": {"tick_rate": True}}, "consciousness.tick_rate"),
        ({"consciousness": {"initial_scup": 101}}, "consciousness.initial_scup"),
        ({"consciousness": {"entropy_target": 1.5}}, "consciousness.entropy_target"),
        ({"consciousness": {"seed": -1}}, "consciousness.seed"),
        ({"consciousness": {"seed": 1.5}}, "consciousness.seed"),
        ({"processes": {"max_concurrent": 0}}, "processes.max_concurrent"),
        ({"processes": {"timeout": "30s"}}, "processes.timeout"),
        ({"processes": {"auto_triggers": {"rm_rf": 5}}}, "processes.auto_triggers"),
        ({"processes": {"auto_triggers": {"neural_analyzer": 0}}}, "processes.auto_triggers.neural_analyzer.every"),
        ({"processes": {"auto_triggers": {"chaos_engine": {"cooldown": 5}}}}, "processes.auto_triggers.chaos_engine"),
        ({"api": {"port": 70000}}, "api.port"),
        ({"api": {"colour": "blue"}}, "api.colour"),
        ({"sound": {"volume": 11}}, "sound"),
        ({"persistence": {"flush_interval": 0}}, "persistence.flush_interval"),
        ({"persistence": {"max_backlog": 5}}, "persistence.max_backlog"),
        ({"persistence": {"max_backlog": 100.5}}, "persistence.max_backlog"),
    ],
)
def test_invalid_values_name_the_file_and_the_key(tmp_path, data, key):
    path = write_config(tmp_path, data)
    with pytest.raises(ConfigError) as caught:
        config_load(path)
    message = str(caught.value)
    assert str(path) in message
    assert key in message


def test_unknown_engine_knob_is_rejected_with_its_name(tmp_path):
    path = write_config(tmp_path, {"consciousness": {"tick_rate": 10, "warp_drive": 3}})
    with pytest.raises(ConfigError, match="warp_drive"):
        config_load(path)


def test_unreadable_and_malformed_files_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        config_load(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        config_load(write_config(tmp_path, "consciousness: [unclosed"))
    with pytest.raises(ConfigError, match="mapping"):
        config_load(write_config(tmp_path, "- just\n- a list\n"))


def test_manage_py_refuses_to_start_with_a_readable_message(tmp_path):
    path = write_config(tmp_path, {"consciousness": {"tick_rate": 0}})
    env = {**os.environ, "DAWN_CONFIG": str(path), "DAWN_LOG_DIR": str(tmp_path)}
    env.pop("DATABASE_URL", None)
    completed = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 2
    assert "Traceback" not in completed.stderr
    assert "consciousness.tick_rate" in completed.stderr and str(path) in completed.stderr


def test_a_file_that_is_not_utf8_is_named_without_a_traceback(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_bytes(b"consciousness:\n  tick_rate: 10 # \xff\xfe latin-1 \xe9\n")
    with pytest.raises(ConfigError, match="not UTF-8") as caught:
        config_load(path)
    assert str(path) in str(caught.value)


def test_a_trigger_on_an_unknown_mood_names_the_key():
    with pytest.raises(ConfigError, match=r"processes\.auto_triggers\.dream_generator\.mood.*sleepy"):
        config_parse({"processes": {"auto_triggers": {"dream_generator": {"mood": "sleepy"}}}})


yaml_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12)
)
yaml_data = st.recursive(
    yaml_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
SECTIONS = ("consciousness", "processes", "api", "persistence", "stream")
KEYS = ("tick_rate", "seed", "units", "auto_triggers", "max_concurrent", "timeout", "port", "cors_origins",
        "flush_interval", "stale_after", "neural_analyzer", "every", "mood", "cooldown")


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        yaml_data,
        st.dictionaries(st.sampled_from(SECTIONS), st.dictionaries(st.sampled_from(KEYS), yaml_data, max_size=4)),
    )
)
def test_any_data_is_either_a_valid_config_or_a_config_error(data):
    try:
        config = config_parse(data)
    except ConfigError as exc:
        assert str(exc).startswith("config.yaml")
    else:
        assert set(config) == set(SECTIONS)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_any_file_content_is_either_a_valid_config_or_a_config_error(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("fuzz") / "config.yaml"
    path.write_bytes(content)
    try:
        config_load(path)
    except ConfigError as exc:
        assert str(path) in str(exc)
