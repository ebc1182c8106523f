"""The fixed set of scripts DAWN may run: names map to modules in this repository, never to request data.

Reads only the numpy-free specs (processes.scripts.specs): validating a run request never imports a script.
"""

from __future__ import annotations

from django.conf import settings

from processes.sandbox import ScriptSpec
from processes.scripts.specs import SPECS, AnalysisSpec, parameters_schema, schema_validate

SCRIPT_PACKAGE = "processes.scripts"

# What a script registered only by test settings is: no description, no parameters, no inputs, no records.
_UNDECLARED = AnalysisSpec(description="", parameters=parameters_schema({}))


def _extra_scripts() -> dict[str, dict]:
    # name -> {"module": ..., optional ScriptSpec limits}; only test settings set DAWN_EXTRA_SCRIPTS
    return dict(getattr(settings, "DAWN_EXTRA_SCRIPTS", {}))


def script_modules() -> dict[str, str]:
    """name -> module: the five analyses, plus fixtures that only test settings register."""
    modules = {name: f"{SCRIPT_PACKAGE}.{name}" for name in SPECS}
    modules.update({name: extra["module"] for name, extra in _extra_scripts().items()})
    return modules


def script_specs() -> dict[str, ScriptSpec]:
    """name -> what the sandbox runs, with the configured timeout (and the fixtures' own limits)."""
    timeout = float(settings.DAWN_CONFIG["processes"]["timeout"])
    specs = {
        name: ScriptSpec(name=name, module=module, timeout_s=timeout, cpu_s=max(1, int(timeout) + 1))
        for name, module in script_modules().items()
    }
    for name, extra in _extra_scripts().items():
        specs[name] = ScriptSpec(name=name, **extra)
    return specs


def analysis_spec(name: str) -> AnalysisSpec:
    """The registered script's description, parameter schema, inputs and records (KeyError if unknown)."""
    if name in SPECS:
        return SPECS[name]
    if name in _extra_scripts():
        return _UNDECLARED
    raise KeyError(name)


def parameters_validate(name: str, parameters: object) -> dict:
    """`parameters` checked against script `name`'s JSON Schema, defaults filled in; ParameterError if not."""
    return schema_validate(analysis_spec(name).parameters, parameters)
