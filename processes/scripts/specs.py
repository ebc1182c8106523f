"""What each analysis is, read without numpy from specs.json: description, parameters, inputs, records.

specs.json maps each script's name to {"description", "parameters", "inputs"?, "records"?}. `parameters` is
a JSON Schema (Draft 2020-12) object, published as is by /api/processes/ and checked with jsonschema both
when a run is requested and by the script itself. `inputs` name what the request carries besides
parameters, seed and context (the dispatcher has one provider per name). `records` name the kinds of rows
the script's result asks to be recorded, under RECORDS_KEY: {kind: [row, ...]}.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from jsonschema import Draft202012Validator, validators

RECORDS_KEY = "records"
SPECS_FILE = Path(__file__).with_name("specs.json")
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


class ParameterError(ValueError):
    """A parameter failed validation; `field` names the offending key."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def parameters_schema(properties: dict[str, dict]) -> dict:
    """The JSON Schema of a parameters object: these properties, nothing else."""
    return {
        "$schema": SCHEMA_DIALECT, "type": "object", "properties": properties, "additionalProperties": False,
    }


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
    errors = sorted(_Validator(schema).iter_errors(parameters),
                    key=lambda e: ([str(p) for p in e.path], e.message))
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


def _spec(entry: dict) -> AnalysisSpec:
    # Each schema's validity is a test (tests/processes/test_scripts.py), not a cost of every cold start.
    return AnalysisSpec(
        description=entry["description"],
        parameters=entry["parameters"],
        inputs=tuple(entry.get("inputs", ())),
        records=tuple(entry.get("records", ())),
    )


SPECS: dict[str, AnalysisSpec] = {
    name: _spec(entry) for name, entry in json.loads(SPECS_FILE.read_text()).items()
}
