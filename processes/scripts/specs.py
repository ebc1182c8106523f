"""What each analysis is, as data the web process reads without numpy: description, parameters, inputs, records.

`parameters` is a JSON Schema (Draft 2020-12) object, published as is by /api/processes/ and checked with
jsonschema both when a run is requested and by the script itself. `inputs` name what the request carries
besides parameters, seed and context (the dispatcher has one provider per name). `records` name the kinds
of rows the script's result asks to be recorded, under RECORDS_KEY: {kind: [row, ...]}.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from jsonschema import Draft202012Validator, validators

RECORDS_KEY = "records"
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


class ParameterError(ValueError):
    """A parameter failed validation; `field` names the offending key."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def parameters_schema(properties: dict[str, dict]) -> dict:
    """The JSON Schema of a parameters object: these properties, nothing else."""
    return {"$schema": SCHEMA_DIALECT, "type": "object", "properties": properties, "additionalProperties": False}


@dataclass(frozen=True)
class AnalysisSpec:
    """One analysis: what it does, what it takes, what its result records."""

    description: str
    parameters: dict  # JSON Schema, see parameters_schema
    inputs: tuple[str, ...] = ()
    records: tuple[str, ...] = ()


def _finite_number(checker: object, instance: object) -> bool:
    # "number" means a finite one: NaN passes every minimum/maximum comparison.
    return Draft202012Validator.TYPE_CHECKER.is_type(instance, "number") and math.isfinite(instance)


_Validator = validators.extend(
    Draft202012Validator, type_checker=Draft202012Validator.TYPE_CHECKER.redefine("number", _finite_number)
)


def _coerced(prop: dict, value: object) -> object:
    # 2.0 is a JSON Schema integer; the script gets an int, and a float for every number.
    if prop.get("type") == "integer":
        return int(value)
    if prop.get("type") == "number":
        return float(value)
    return value


def schema_validate(schema: dict, parameters: object) -> dict:
    """Parameters checked against `schema`, defaults filled in; ParameterError naming the first bad field."""
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, Mapping):
        raise ParameterError("parameters", f"must be an object, got {type(parameters).__name__}")
    parameters = dict(parameters)
    properties = schema.get("properties", {})
    errors = sorted(_Validator(schema).iter_errors(parameters), key=lambda e: ([str(p) for p in e.path], e.message))
    if errors:
        error = errors[0]
        if error.path:
            raise ParameterError(str(error.path[0]), error.message)
        unknown = sorted(str(key) for key in parameters if key not in properties)
        if error.validator == "additionalProperties" and unknown:
            expected = ", ".join(sorted(properties)) or "none"
            raise ParameterError(unknown[0], f"unknown parameter (expected one of: {expected})")
        raise ParameterError("parameters", error.message)
    return {
        name: _coerced(prop, parameters[name] if name in parameters else prop["default"])
        for name, prop in properties.items()
        if name in parameters or "default" in prop
    }


def _integer(default: int, minimum: int, maximum: int, description: str) -> dict:
    return {"type": "integer", "default": default, "minimum": minimum, "maximum": maximum, "description": description}


def _number(default: float, minimum: float, maximum: float, description: str) -> dict:
    return {"type": "number", "default": default, "minimum": minimum, "maximum": maximum, "description": description}


def _boolean(default: bool, description: str) -> dict:
    return {"type": "boolean", "default": default, "description": description}


SPECS: dict[str, AnalysisSpec] = {
    "neural_analyzer": AnalysisSpec(
        description="Correlates unit activity over recent ticks, thresholds it into a connectivity graph and "
        "reports its density, clustering, efficiency and strongest regions.",
        parameters=parameters_schema({
            "threshold": _number(0.5, 0.0, 1.0, "Absolute correlation at or above which two units are connected."),
            "window": _integer(128, 4, 4096, "Number of most recent ticks to correlate."),
            "signed": _boolean(False, "Graph metrics use only positive correlations instead of |r| "
                               "(regions always use positive ones)."),
            "max_regions": _integer(4, 1, 16, "How many of the largest regions to report."),
        }),
    ),
    "consciousness_processor": AnalysisSpec(
        description="Tracks consciousness unity (dominant eigenmode share), multi-state (participation ratio) "
        "and coherence between the two halves of the units across sliding windows of recent ticks.",
        parameters=parameters_schema({
            "window": _integer(32, 8, 1024, "Ticks per sliding window."),
            "step": _integer(4, 1, 256, "Ticks between the starts of consecutive windows."),
            "segment": _integer(16, 4, 512, "Welch segment length (ticks) for the coherence estimate; "
                                "at most 2/3 of the window."),
        }),
    ),
    "chaos_engine": AnalysisSpec(
        description="Tunes the parameter of a seeded logistic or tent map until the normalised Shannon entropy "
        "of its orbit meets a target, and reports the orbit's Lyapunov exponent and the entropy drive.",
        parameters=parameters_schema({
            "target_entropy": _number(0.5, 0.0, 1.0, "Entropy level (0..1) the system should move toward."),
            "gain": _number(1.0, 0.0, 1.0, "Fraction of the way from the current entropy to the target that "
                            "the orbit aims at."),
            "map": {"type": "string", "default": "logistic", "enum": ["logistic", "tent"],
                    "description": "Which one-dimensional map generates the orbit."},
            "orbit_length": _integer(2000, 100, 50000, "Orbit samples after burn-in used for entropy and "
                                     "Lyapunov exponent."),
            "burn_in": _integer(256, 0, 10000, "Iterations discarded before sampling, so transients do not count."),
            "bins": _integer(32, 4, 256, "Histogram bins on [0, 1] for the orbit entropy."),
        }),
    ),
    "memory_consolidator": AnalysisSpec(
        description="Consolidates recent per-tick activity into long-term patterns with seeded k-means++ "
        "clustering and reports how much of the variation they explain.",
        parameters=parameters_schema({
            "k": _integer(4, 1, 16, "Number of patterns (clusters) to form."),
            "iterations": _integer(50, 1, 500, "Maximum Lloyd iterations per restart."),
            "restarts": _integer(4, 1, 16, "Independent k-means++ initialisations; the lowest inertia wins."),
            "include_series": _boolean(False, "Also cluster on the global series (scup/100, entropy, ...) "
                                       "aligned to the activity rows."),
        }),
        records=("consolidations",),
    ),
    "dream_generator": AnalysisSpec(
        description="Builds a dream sequence by walking between long-term memory patterns, recombining them "
        "with seeded noise, and narrates and paints the result.",
        parameters=parameters_schema({
            "length": _integer(16, 2, 128, "Frames (unit-state rows) in the dream sequence."),
            "novelty": _number(0.3, 0.0, 1.0, "How far the dream strays: jump distance, crossover size and "
                               "noise level."),
            "fallback_k": _integer(4, 1, 16, "Patterns mined from recent activity with k-means when the "
                                   "request has none."),
        }),
        inputs=("patterns",),
    ),
}
