"""The five analysis scripts: contract, determinism, entry point and a few scientific checks. No database."""

from __future__ import annotations

import base64
import copy
import importlib
import io
import json
import math
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from PIL import Image

from consciousness.engine import MOOD_INFLUENCES
from processes.sandbox.entry import EXIT_BAD_REQUEST, EXIT_ERROR, EXIT_OK, run_module_main
from processes.scripts import SCRIPTS
from processes.scripts.specs import SPECS, ParameterError, schema_validate
from processes.scripts.toolkit import result as toolkit_result
from processes.scripts.toolkit.drawing import png_base64
from processes.scripts.toolkit.result import unit_ranges

BASE_DIR = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ENTRY = [sys.executable, "-m", "processes.sandbox", "run"]


def network_activity(seed: int = 7, ticks: int = 128, units: int = 32, populations: int = 4) -> np.ndarray:
    """A seeded leaky network: populations share a slow latent drive and couple more strongly inside."""
    rng = np.random.default_rng(seed)
    member = np.repeat(np.arange(populations), units // populations)
    coupling = rng.normal(0, 0.1, (units, units)) + 0.6 * (member[:, None] == member[None, :]) / (units // populations)
    latent = np.zeros(populations)
    x = rng.uniform(0.3, 0.7, units)
    rows = np.empty((ticks, units))
    for t in range(ticks):
        latent = 0.9 * latent + rng.normal(0, 0.3, populations)
        drive = x @ coupling + 0.5 * latent[member] + rng.normal(0, 0.2, units)
        x = np.clip(0.6 * x + 0.4 / (1 + np.exp(-drive + 0.5)), 0, 1)
        rows[t] = x
    return rows


def make_request(activity: np.ndarray, *, parameters: dict | None = None, patterns: list | None = None,
                 tick_number: int = 250, seed: int = 12345) -> dict:
    ticks, units = activity.shape
    steps = np.arange(ticks)
    return {
        "parameters": parameters or {},
        "seed": seed,
        "context": {
            "tick_number": tick_number, "scup": 55.1, "entropy": 0.48, "mood": "curious",
            "neural_activity": 0.52, "consciousness_unity": 0.31, "memory_pressure": 0.4, "units": units,
            "activity": activity.tolist(),
            "series": {
                "scup": (50 + 10 * np.sin(steps / 10)).tolist(),
                "entropy": (0.5 + 0.1 * np.cos(steps / 7)).tolist(),
                "neural_activity": activity.mean(axis=1).tolist(),
                "consciousness_unity": np.linspace(0.2, 0.35, ticks).tolist(),
                "memory_pressure": np.linspace(0.1, 0.4, ticks).tolist(),
                "multi_state": np.linspace(0.6, 0.4, ticks).tolist(),
            },
        },
        "patterns": patterns or [],
    }


@pytest.fixture(scope="module")
def request_base() -> dict:
    return make_request(network_activity())


@pytest.fixture(scope="module")
def results(request_base) -> dict:
    """Each script run once in-process on the shared request (reused by the shape tests)."""
    out = {}
    for name in SCRIPTS:
        lines: list[str] = []
        out[name] = (importlib.import_module(f"processes.scripts.{name}").run(copy.deepcopy(request_base), lines.append), lines)
    return out


def decode_png(data: str) -> Image.Image:
    raw = base64.b64decode(data, validate=True)
    assert raw.startswith(PNG_MAGIC)
    img = Image.open(io.BytesIO(raw))
    img.load()
    return img


# --------------------------------------------------------------------------- contract

def test_registry_lists_the_five_scripts():
    assert SCRIPTS == ("neural_analyzer", "consciousness_processor", "chaos_engine", "memory_consolidator", "dream_generator")


@pytest.mark.parametrize("name", SCRIPTS)
def test_spec_declares_a_json_schema_and_a_description(name):
    spec = SPECS[name]
    assert callable(importlib.import_module(f"processes.scripts.{name}").run)
    assert isinstance(spec.description, str) and spec.description.endswith(".")
    schema = spec.parameters
    Draft202012Validator.check_schema(schema)
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    for param, prop in schema["properties"].items():
        assert prop["type"] in {"integer", "number", "boolean", "string"}, param
        assert "choices" not in prop, param
        assert prop["description"]
        assert schema_validate(schema, {})[param] == prop["default"]
    assert Draft202012Validator(schema).is_valid(schema_validate(schema, {}))


def test_the_toolkit_mood_influences_are_the_engines():
    assert toolkit_result.MOOD_INFLUENCES == MOOD_INFLUENCES
    assert not hasattr(toolkit_result, "MOODS")


@pytest.mark.parametrize("name", SCRIPTS)
def test_run_returns_documented_result(name, results):
    result, progress = results[name]
    assert isinstance(result["analysis"], str) and len(result["analysis"]) > 20
    assert result["metrics"]
    for key, value in result["metrics"].items():
        assert type(value) is float and math.isfinite(value), key
    img = decode_png(result["visualization"])
    assert 128 <= img.width <= 512 and 128 <= img.height <= 512
    colours = np.unique(np.asarray(img.convert("RGB")).reshape(-1, 3), axis=0)
    assert len(colours) > 16  # a picture, not a blank canvas
    effect = result["consciousness_impact"]
    assert type(effect["scup_change"]) is float and -5.0 <= effect["scup_change"] <= 5.0
    assert effect["mood_influence"] in MOOD_INFLUENCES
    assert progress and all(isinstance(line, str) and "\n" not in line for line in progress)
    json.dumps(result, allow_nan=False)


@pytest.mark.parametrize("name", SCRIPTS)
def test_same_request_gives_identical_result(name, request_base, results):
    module = importlib.import_module(f"processes.scripts.{name}")
    again = module.run(copy.deepcopy(request_base), lambda line: None)
    assert json.dumps(again, sort_keys=True) == json.dumps(results[name][0], sort_keys=True)


def test_seed_changes_seeded_scripts(request_base):
    from processes.scripts import dream_generator

    other = dict(request_base, seed=99)
    a = dream_generator.run(copy.deepcopy(request_base), lambda line: None)
    b = dream_generator.run(copy.deepcopy(other), lambda line: None)
    assert a["dream"]["sequence"] != b["dream"]["sequence"]


@pytest.mark.parametrize("name", SCRIPTS)
def test_missing_context_is_a_value_error(name):
    module = importlib.import_module(f"processes.scripts.{name}")
    with pytest.raises(ValueError, match="context"):
        module.run({"parameters": {}, "seed": 1}, lambda line: None)


@pytest.mark.parametrize("name", SCRIPTS)
def test_ragged_activity_is_a_value_error(name, request_base):
    module = importlib.import_module(f"processes.scripts.{name}")
    bad = copy.deepcopy(request_base)
    bad["context"]["activity"][3] = bad["context"]["activity"][3][:-1]
    with pytest.raises(ValueError, match="same length"):
        module.run(bad, lambda line: None)


@pytest.mark.parametrize("name", SCRIPTS)
def test_unknown_parameter_is_rejected_by_run(name, request_base):
    module = importlib.import_module(f"processes.scripts.{name}")
    bad = copy.deepcopy(request_base)
    bad["parameters"] = {"bogus": 1}
    with pytest.raises(ParameterError) as err:
        module.run(bad, lambda line: None)
    assert err.value.field == "bogus"


def test_importing_scripts_does_not_load_django():
    code = (
        "import sys; sys.modules['django'] = None\n"
        "import importlib\n"
        "from processes.scripts import SCRIPTS\n"
        "[importlib.import_module('processes.scripts.' + n) for n in SCRIPTS]\n"
        "print('ok')"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=BASE_DIR, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_registry_import_does_not_load_numpy():
    code = "import sys; import processes.scripts, processes.scripts.specs; print('numpy' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=BASE_DIR, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr


# --------------------------------------------------------------------------- entry point

@pytest.mark.parametrize("name", SCRIPTS)
def test_entry_point_prints_json_and_exits_zero(name, request_base, results):
    done = subprocess.run(
        [*ENTRY, f"processes.scripts.{name}"],
        input=json.dumps(request_base), cwd=BASE_DIR, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.strip().splitlines()) == 1
    assert json.loads(done.stdout) == json.loads(json.dumps(results[name][0]))
    assert done.stderr.strip(), "progress lines go to stderr"


@pytest.mark.parametrize(
    ("name", "stdin", "needle"),
    [
        ("neural_analyzer", "not json", "not valid JSON"),
        ("chaos_engine", json.dumps({"seed": 1, "parameters": {}}), "context"),
        ("memory_consolidator", None, "k"),
    ],
)
def test_entry_point_bad_request_exits_two(name, stdin, needle, request_base):
    if stdin is None:
        stdin = json.dumps(dict(request_base, parameters={"k": 0}))
    done = subprocess.run(
        [*ENTRY, f"processes.scripts.{name}"],
        input=stdin, cwd=BASE_DIR, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("bad request:") and needle in last


# --------------------------------------------------------------------------- parameters

SCHEMA = {
    "type": "object",
    "properties": {
        "count": {"type": "integer", "default": 4, "minimum": 1, "maximum": 10, "description": "n"},
        "level": {"type": "number", "default": 0.5, "minimum": 0.0, "maximum": 1.0, "description": "x"},
        "flag": {"type": "boolean", "default": False, "description": "b"},
        "mode": {"type": "string", "default": "a", "enum": ["a", "b"], "description": "s"},
    },
    "additionalProperties": False,
}


def test_schema_validate_applies_defaults():
    assert schema_validate(SCHEMA, {}) == {"count": 4, "level": 0.5, "flag": False, "mode": "a"}
    got = schema_validate(SCHEMA, {"count": 7, "level": 1, "flag": True, "mode": "b"})
    assert got == {"count": 7, "level": 1.0, "flag": True, "mode": "b"}
    assert type(got["level"]) is float


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"nope": 1}, "nope"),
        ({"count": "3"}, "count"),
        ({"count": 2.5}, "count"),
        ({"count": True}, "count"),
        ({"level": False}, "level"),
        ({"level": float("nan")}, "level"),
        ({"level": float("inf")}, "level"),
        ({"count": 0}, "count"),
        ({"count": 11}, "count"),
        ({"level": 1.5}, "level"),
        ({"flag": 1}, "flag"),
        ({"mode": "c"}, "mode"),
        ({"mode": 3}, "mode"),
    ],
)
def test_schema_validate_rejects_bad_values(params, field):
    with pytest.raises(ParameterError) as err:
        schema_validate(SCHEMA, params)
    assert err.value.field == field
    assert isinstance(err.value, ValueError)


def test_schema_validate_rejects_non_mapping():
    with pytest.raises(ParameterError) as err:
        schema_validate(SCHEMA, [1, 2])
    assert err.value.field == "parameters"


def test_png_base64_encodes_arrays_and_images():
    gradient = np.linspace(0, 1, 64 * 32).reshape(32, 64)
    assert decode_png(png_base64(gradient)).size == (64, 32)
    rgb = np.zeros((8, 8, 3), dtype=np.uint8)
    assert decode_png(png_base64(rgb)).mode == "RGB"
    assert decode_png(png_base64(Image.new("RGB", (10, 12)))).size == (10, 12)


def test_unit_ranges_compresses_runs():
    assert unit_ranges([3, 4, 5, 6, 7, 12]) == "units 3-7, 12"
    assert unit_ranges([9]) == "unit 9"


# --------------------------------------------------------------------------- science

def test_neural_analyzer_finds_two_independent_blocks():
    from processes.scripts import neural_analyzer

    rng = np.random.default_rng(3)
    ticks = 128
    a, b = rng.normal(size=ticks), rng.normal(size=ticks)
    activity = np.empty((ticks, 32))
    activity[:, :16] = 0.5 + 0.15 * a[:, None] + 0.05 * rng.normal(size=(ticks, 16))
    activity[:, 16:] = 0.5 + 0.15 * b[:, None] + 0.05 * rng.normal(size=(ticks, 16))
    result = neural_analyzer.run(make_request(np.clip(activity, 0, 1)), lambda line: None)
    assert result["metrics"]["regions"] == 2.0
    assert sorted(r["label"] for r in result["regions"]) == ["units 0-15", "units 16-31"]
    # Two complete 16-cliques and nothing between them.
    assert result["metrics"]["clustering"] == pytest.approx(1.0)
    assert result["metrics"]["connectivity"] == pytest.approx(2 * 120 / 496)


def test_chaos_engine_lyapunov_at_r4_is_ln2():
    from processes.scripts.chaos_engine import lyapunov_exponent, orbit, orbit_entropy

    samples = orbit("logistic", 4.0, 0.3141, 20000, burn_in=100)
    assert lyapunov_exponent("logistic", 4.0, samples) == pytest.approx(math.log(2), abs=0.03)
    tent = orbit("tent", 1.5, 0.3141, 2000, burn_in=100)
    assert lyapunov_exponent("tent", 1.5, tent) == pytest.approx(math.log(1.5))
    # Period-2 orbit: two occupied bins -> entropy log 2 / log bins, negative exponent.
    periodic = orbit("logistic", 3.2, 0.3141, 2000, burn_in=500)
    assert orbit_entropy(periodic, 32) == pytest.approx(math.log(2) / math.log(32))
    assert lyapunov_exponent("logistic", 3.2, periodic) < 0


def test_chaos_engine_meets_target_entropy(request_base):
    from processes.scripts import chaos_engine

    for target in (0.3, 0.8):
        req = dict(copy.deepcopy(request_base), parameters={"target_entropy": target})
        result = chaos_engine.run(req, lambda line: None)
        assert result["metrics"]["orbit_entropy"] == pytest.approx(target, abs=0.05)
        # the drive is what the orbit delivered, its entropy less the system's, not the target's distance
        assert result["consciousness_impact"]["entropy_drive"] == result["metrics"]["orbit_entropy"] - 0.48
        assert result["consciousness_impact"]["entropy_drive"] == pytest.approx(target - 0.48, abs=0.05)
    chaotic = chaos_engine.run(dict(copy.deepcopy(request_base), parameters={"target_entropy": 0.9}), lambda line: None)
    assert chaotic["metrics"]["lyapunov"] > 0


def test_chaos_engine_drive_follows_the_orbit_it_produced(request_base):
    from processes.scripts import chaos_engine

    # four bins give orbit entropies in coarse steps (a fixed point 0, a period-2 orbit 0.5): the aim 0.1 is
    # out of reach there, and the drive is what the orbit reached, not the target's distance
    coarse = chaos_engine.run(dict(copy.deepcopy(request_base), parameters={"target_entropy": 0.1, "bins": 4}),
                              lambda line: None)
    metrics, drive = coarse["metrics"], coarse["consciousness_impact"]["entropy_drive"]
    assert metrics["entropy_error"] > 0.05
    assert drive == pytest.approx(metrics["orbit_entropy"] - 0.48)
    assert abs(drive - (0.1 - 0.48)) > 0.05


def test_memory_consolidator_recovers_three_clusters():
    from processes.scripts import memory_consolidator

    rng = np.random.default_rng(5)
    sizes = [64, 40, 24]
    centres = rng.uniform(0.1, 0.9, (3, 32))
    centres[1] = 1.0 - centres[0]
    activity = np.vstack([np.clip(c + rng.normal(0, 0.03, (n, 32)), 0, 1) for c, n in zip(centres, sizes)])
    activity = activity[rng.permutation(activity.shape[0])]
    req = make_request(activity, parameters={"k": 3}, tick_number=500)
    result = memory_consolidator.run(req, lambda line: None)
    patterns = result["patterns"]
    assert len(patterns) == 3
    assert [p["weight"] for p in patterns] == pytest.approx([n / 128 for n in sizes])
    assert [p["support"] for p in patterns] == sizes
    for pattern, n in zip(patterns, sizes):
        true_centre = centres[sizes.index(n)]
        assert np.abs(np.array(pattern["centroid"]) - true_centre).max() < 0.05
        assert pattern["label"]
    assert result["source_ticks"] == [373, 500]
    assert result["metrics"]["explained_fraction"] > 0.9
    assert 0.2 <= result["consciousness_impact"]["memory_relief"] <= 0.6
    assert result["consciousness_impact"]["mood_influence"] == "positive"


def test_dream_generator_uses_given_patterns(request_base):
    from processes.scripts import dream_generator

    patterns = [
        {"centroid": [0.9] * 16 + [0.1] * 16, "weight": 0.6, "label": "left awake"},
        {"centroid": [0.1] * 16 + [0.9] * 16, "weight": 0.4, "label": "right awake"},
    ]
    req = dict(copy.deepcopy(request_base), patterns=patterns, parameters={"length": 12})
    result = dream_generator.run(req, lambda line: None)
    seq = np.array(result["dream"]["sequence"])
    assert seq.shape == (12, 32)
    assert seq.min() >= 0.0 and seq.max() <= 1.0
    assert set(result["dream"]["keyframes"]) <= {"left awake", "right awake"}
    assert "awake" in result["dream"]["narrative"]
    assert result["metrics"]["patterns_used"] == 2.0


def test_dream_generator_rejects_mismatched_pattern(request_base):
    from processes.scripts import dream_generator

    req = dict(copy.deepcopy(request_base), patterns=[{"centroid": [0.5] * 5, "weight": 1.0, "label": "x"}])
    with pytest.raises(ValueError, match="32 values"):
        dream_generator.run(req, lambda line: None)


# --------------------------------------------------------------------------- the entry point in-process

def _entry(monkeypatch, capsys, run_fn, stdin: str = '{"seed": 1}'):
    module = types.ModuleType("dawn_test_script")
    module.run = run_fn
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode())))
    code = run_module_main(module.__name__)
    return code, capsys.readouterr()


def test_entry_success_prints_one_json_line(monkeypatch, capsys):
    def run_fn(request, emit):
        emit("step one\nstill one line")
        return {"seed": request["seed"], "x": 1.5}

    code, out = _entry(monkeypatch, capsys, run_fn)
    assert code == EXIT_OK == 0
    assert out.out == '{"seed":1,"x":1.5}\n'
    assert out.err == "step one still one line\n"


def test_entry_maps_errors_to_exit_codes(monkeypatch, capsys):
    def bad(request, emit):
        raise ParameterError("k", "must be >= 1")

    def broken(request, emit):
        raise RuntimeError("boom")

    def nan(request, emit):
        return {"x": float("nan")}

    code, out = _entry(monkeypatch, capsys, bad)
    assert (code, out.out, out.err) == (EXIT_BAD_REQUEST, "", "bad request: k: must be >= 1\n")
    code, out = _entry(monkeypatch, capsys, broken)
    assert (code, out.out, out.err.splitlines()[-1]) == (EXIT_ERROR, "", "RuntimeError: boom")
    code, out = _entry(monkeypatch, capsys, nan)
    assert code == EXIT_ERROR and out.out == ""
    code, out = _entry(monkeypatch, capsys, bad, stdin="[1, 2]")
    assert (code, out.err) == (EXIT_BAD_REQUEST, "bad request: expected a JSON object, got list\n")


@settings(max_examples=60, deadline=None)
@given(st.floats(min_value=0.0, max_value=1.0), st.integers(min_value=1, max_value=10))
def test_schema_validate_accepts_in_range_values(level, count):
    got = schema_validate(SCHEMA, {"level": level, "count": count})
    assert got["level"] == level and type(got["level"]) is float
    assert got["count"] == count and type(got["count"]) is int
