"""The fixed set of scripts DAWN may run: names map to modules in this repository, never to request data."""

from __future__ import annotations

import importlib
from functools import lru_cache

from django.conf import settings

from processes.sandbox import ScriptSpec
from processes.scripts import SCRIPTS

SCRIPT_PACKAGE = "processes.scripts"


def _extra_scripts() -> dict[str, dict]:
    # name -> {"module": ..., optional ScriptSpec limits}; only test settings set DAWN_EXTRA_SCRIPTS
    return dict(getattr(settings, "DAWN_EXTRA_SCRIPTS", {}))


def script_modules() -> dict[str, str]:
    """name -> module: the five analyses, plus fixtures that only test settings register."""
    modules = {name: f"{SCRIPT_PACKAGE}.{name}" for name in SCRIPTS}
    modules.update({name: extra["module"] for name, extra in _extra_scripts().items()})
    return modules


def script_specs() -> dict[str, ScriptSpec]:
    timeout = float(settings.DAWN_CONFIG["processes"]["timeout"])
    specs = {
        name: ScriptSpec(name=name, module=module, timeout_s=timeout, cpu_s=max(1, int(timeout) + 1))
        for name, module in script_modules().items()
    }
    for name, extra in _extra_scripts().items():
        specs[name] = ScriptSpec(name=name, **extra)
    return specs


@lru_cache(maxsize=None)
def _module(module: str):
    return importlib.import_module(module)


def script_schema(name: str) -> dict:
    """The script's declared parameters ({} for a script that declares none)."""
    return dict(getattr(_module(script_modules()[name]), "PARAMETERS", {}))


def script_description(name: str) -> str:
    return str(getattr(_module(script_modules()[name]), "DESCRIPTION", ""))
