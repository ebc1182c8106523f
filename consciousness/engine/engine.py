"""Engine: holds state, config and generators; advances with `step`, snapshots and restores bit for bit."""

from __future__ import annotations

import base64
import binascii
import math
from dataclasses import fields
from typing import Any

import numpy as np
from numpy.random import PCG64, Generator, SeedSequence

from .config import EngineConfig
from .inputs import STIMULUS_KINDS, StepInputs
from .model import HIGUCHI_KMAX, initial_state, step
from .network import build_network
from .mood import MOODS
from .state import SERIES, EngineState, Network, StepResult, frozen

SNAPSHOT_VERSION = 3  # 2: the rate network of issue 10 (currents, tangent, window sums); 3: multi_state series
STREAMS = ("construction", "dynamics", "mood")  # SeedSequence children, in spawn order
# the shape of the model: a snapshot only fits a configuration that agrees on these
STRUCTURE = ("units", "history_window", "unity_window", "lyapunov_window", "memory_capacity")


def _streams(seed: int) -> dict[str, Generator]:
    children = SeedSequence(seed).spawn(len(STREAMS))
    return {name: Generator(PCG64(child)) for name, child in zip(STREAMS, children)}


class Engine:
    """The running model: `advance()` steps it; `snapshot()`/`from_snapshot()` persist it exactly."""

    def __init__(self, cfg: EngineConfig, *, seed: int | None = None) -> None:
        seed = cfg.seed if seed is None else seed
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.cfg = cfg
        self.seed = seed
        self.rngs = _streams(seed)
        self.network = build_network(cfg.units, self.rngs["construction"])
        self._state = initial_state(cfg, self.network, self.rngs["construction"], self.rngs["dynamics"], self.rngs["mood"])

    @property
    def state(self) -> EngineState:
        """The state after the last tick (tick_number 0 before the first)."""
        return self._state

    def advance(self, inputs: StepInputs | None = None) -> StepResult:
        """Run one tick with `inputs` (none by default) and keep its state."""
        result = step(self._state, self.network, self.cfg, inputs or StepInputs(), self.rngs["dynamics"], self.rngs["mood"])
        self._state = result.state
        return result

    def context(self, window: int = 128, *, at: int | None = None) -> dict:
        """JSON-safe recent history for analysis processes: figures now, per-unit activity and series, oldest first.

        `at` asks for the context as it was at an earlier tick, rebuilt bit for bit from the history window
        (ValueError unless its `window` ticks are all still held); the engine keeps no past moods, so such a
        context has no "mood".
        """
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ValueError(f"window must be a positive integer, got {window!r}")
        window = min(window, self.cfg.history_window)
        s = self._state
        back = 0 if at is None else s.tick_number - at
        if isinstance(at, bool) or (at is not None and not isinstance(at, int)) or back < 0:
            raise ValueError(f"at must be a tick number up to {s.tick_number}, got {at!r}")
        if back + window > self.cfg.history_window:
            raise ValueError(f"the context of tick {at} is no longer held (history_window {self.cfg.history_window})")
        end = len(s.series) - back
        recent = s.series[end - window:end]
        # the figures of an earlier tick are the last row of its series (the same float64 values)
        figures = {name: float(recent[-1, i]) for i, name in enumerate(SERIES)} if back else {
            name: float(getattr(s, name)) for name in SERIES
        }
        context = {
            "tick_number": int(s.tick_number) - back,
            "scup": figures["scup"],
            "entropy": figures["entropy"],
            "mood": s.mood,
            "neural_activity": figures["neural_activity"],
            "consciousness_unity": figures["consciousness_unity"],
            "memory_pressure": figures["memory_pressure"],
            "units": int(self.cfg.units),
            "activity": s.history[end - window:end].tolist(),
            "series": {name: recent[:, i].tolist() for i, name in enumerate(SERIES)},
        }
        if back:
            del context["mood"]
        return context

    def snapshot(self) -> dict:
        """The full state as plain JSON-safe data: seed, generator states, network and state, with a version."""
        return {
            "version": SNAPSHOT_VERSION,
            "seed": self.seed,
            "structure": {key: getattr(self.cfg, key) for key in STRUCTURE},
            "rng": {name: _rng_dump(rng) for name, rng in self.rngs.items()},
            "network": {"coupling": _array_dump(self.network.coupling)},
            "state": _state_dump(self._state),
        }

    @classmethod
    def from_snapshot(cls, snapshot: dict, cfg: EngineConfig) -> Engine:
        """Rebuild an engine that continues exactly where `snapshot` left off; ValueError if it does not fit."""
        try:
            return cls._restore(snapshot, cfg)
        except ValueError:
            raise
        except (KeyError, TypeError, AttributeError, IndexError, OverflowError) as exc:
            raise ValueError(f"malformed engine snapshot: {type(exc).__name__}: {exc}") from None

    @classmethod
    def _restore(cls, snapshot: dict, cfg: EngineConfig) -> Engine:
        if not isinstance(snapshot, dict):
            raise ValueError(f"engine snapshot must be a dict, got {type(snapshot).__name__}")
        version = snapshot.get("version")
        if version != SNAPSHOT_VERSION:
            raise ValueError(f"engine snapshot version {version!r} is not supported (this engine reads version {SNAPSHOT_VERSION})")
        structure = snapshot["structure"]
        for key in STRUCTURE:
            if structure.get(key) != getattr(cfg, key):
                raise ValueError(f"snapshot has {key}={structure.get(key)!r} but the configuration asks for {getattr(cfg, key)!r}")
        seed = snapshot["seed"]
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"snapshot seed must be a non-negative integer, got {seed!r}")
        n = cfg.units
        raw_network = snapshot["network"]
        network = Network(coupling=frozen(_array(raw_network["coupling"], (n, n), "network.coupling")))
        rng_states = snapshot["rng"]
        if set(rng_states) != set(STREAMS):
            raise ValueError(f"snapshot rng must hold the streams {', '.join(STREAMS)}")
        engine = cls.__new__(cls)
        engine.cfg = cfg
        engine.seed = seed
        engine.rngs = {name: _rng_load(name, rng_states[name]) for name in STREAMS}
        engine.network = network
        engine._state = _state_load(snapshot["state"], cfg)
        return engine


def _rng_dump(rng: Generator) -> dict:
    # PCG64 state words are 128-bit: strings survive JSON readers that turn big numbers into floats
    state = rng.bit_generator.state
    return {
        "bit_generator": state["bit_generator"],
        "state": str(state["state"]["state"]),
        "inc": str(state["state"]["inc"]),
        "has_uint32": int(state["has_uint32"]),
        "uinteger": int(state["uinteger"]),
    }


def _rng_load(name: str, raw: dict) -> Generator:
    if raw.get("bit_generator") != "PCG64":
        raise ValueError(f"snapshot rng.{name} is not a PCG64 state")
    try:
        words = {"state": int(raw["state"]), "inc": int(raw["inc"])}
    except (TypeError, ValueError):
        raise ValueError(f"snapshot rng.{name} has unreadable state words") from None
    if not all(0 <= w < 2**128 for w in words.values()) or words["inc"] % 2 == 0:
        raise ValueError(f"snapshot rng.{name} state words are out of range")
    bit_generator = PCG64()
    bit_generator.state = {
        "bit_generator": "PCG64",
        "state": words,
        "has_uint32": int(raw["has_uint32"]),
        "uinteger": int(raw["uinteger"]),
    }
    return Generator(bit_generator)


def _array_dump(array: np.ndarray) -> dict:
    """An array as its little-endian bytes in base64: every bit kept, and ~50x cheaper to encode than a
    JSON list of floats (the snapshot is written every second, from the serving process)."""
    data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    return {"dtype": data.dtype.str, "shape": list(data.shape), "base64": base64.b64encode(data.tobytes()).decode("ascii")}


def _array_decode(raw: Any, dtype: type) -> np.ndarray:
    if isinstance(raw, dict):  # the form _array_dump writes
        expected = np.dtype(dtype).newbyteorder("<")
        if raw.get("dtype") != expected.str or not isinstance(raw.get("shape"), list):
            raise TypeError("unexpected dtype or shape")
        data = base64.b64decode(raw["base64"], validate=True)
        return np.frombuffer(data, dtype=expected).reshape(raw["shape"]).astype(dtype)
    return np.array(raw, dtype=dtype)  # plain nested lists


def _array(raw: Any, shape: tuple[int, ...], where: str, dtype: type = np.float64) -> np.ndarray:
    try:
        array = _array_decode(raw, dtype)
    except (TypeError, ValueError, binascii.Error):
        raise ValueError(f"snapshot {where} is not a numeric array") from None
    if array.shape != shape:
        raise ValueError(f"snapshot {where} has shape {array.shape}, expected {shape}")
    if dtype is np.float64 and not np.all(np.isfinite(array)):
        raise ValueError(f"snapshot {where} holds non-finite numbers")
    return array


def _state_dump(state: EngineState) -> dict:
    out: dict[str, Any] = {}
    for f in fields(EngineState):
        value = getattr(state, f.name)
        # scalars are floats, which JSON writes with repr and so round-trips exactly
        out[f.name] = _array_dump(value) if isinstance(value, np.ndarray) else value
    return out


def _state_load(raw: dict, cfg: EngineConfig) -> EngineState:
    if not isinstance(raw, dict):
        raise ValueError("snapshot state must be a dict")
    expected = {f.name for f in fields(EngineState)}
    missing, extra = expected - set(raw), set(raw) - expected
    if missing or extra:
        raise ValueError(f"snapshot state fields differ: missing {sorted(missing)}, unexpected {sorted(extra)}")
    n, window, capacity = cfg.units, cfg.history_window, cfg.memory_capacity
    shapes = {
        "activity": (n,),
        "currents": (n,),
        "tangent": (n,),
        "lyapunov_logs": (cfg.lyapunov_window,),
        "history": (window, n),
        "window_sums": (2, n + 2, n + 1),
        "increment_sums": (HIGUCHI_KMAX,),
        "series": (window, len(SERIES)),
        "stimulus_levels": (len(STIMULUS_KINDS),),
        "memory_traces": (capacity, n),
        "memory_strengths": (capacity,),
    }
    values: dict[str, Any] = {}
    for f in fields(EngineState):
        value = raw[f.name]
        if f.name in shapes:
            values[f.name] = frozen(_array(value, shapes[f.name], f"state.{f.name}"))
        elif f.name in ("tick_number", "memory_last", "memory_age", "mood_ticks"):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"snapshot state.{f.name} must be an integer, got {value!r}")
            values[f.name] = value
        elif f.name == "mood":
            if value not in MOODS:
                raise ValueError(f"snapshot state.mood {value!r} is not a known mood")
            values[f.name] = value
        else:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"snapshot state.{f.name} must be a finite number, got {value!r}")
            values[f.name] = float(value)
    if not -1 <= values["memory_last"] < capacity:
        raise ValueError(f"snapshot state.memory_last {values['memory_last']} is outside the memory")
    if values["tick_number"] < 0:
        raise ValueError("snapshot state.tick_number must be non-negative")
    return EngineState(**values)
