"""What the sandbox runs (a registered module with its limits) and what it reports back."""
from __future__ import annotations

import re
from dataclasses import dataclass

from processes.sandbox.reasons import Outcome

_MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


class UnknownScript(ValueError):
    """The name is not in the runner's registry."""


@dataclass(frozen=True)
class ScriptSpec:
    """A script the runner may start: its module and its limits."""

    name: str  # registry key, e.g. "neural_analyzer"
    module: str  # e.g. "processes.scripts.neural_analyzer" (only modules inside the repo)
    timeout_s: float = 30.0  # wall clock
    cpu_s: int = 30  # RLIMIT_CPU
    memory_bytes: int = 1_073_741_824  # RLIMIT_AS
    max_output_bytes: int = 4_194_304  # cap on captured stdout and on streamed stderr

    def __post_init__(self) -> None:
        if not _MODULE_RE.match(self.module):
            raise ValueError(f"invalid module name {self.module!r}")
        if self.timeout_s <= 0 or self.cpu_s <= 0 or self.memory_bytes <= 0 or self.max_output_bytes <= 0:
            raise ValueError(f"limits of {self.name!r} must be positive")


@dataclass(frozen=True)
class Execution:
    """How one execution ended."""

    status: Outcome
    result: dict | None  # parsed stdout JSON when completed
    exit_code: int | None
    signal: int | None
    reason: str  # human readable, "" when completed
    started_at: float  # time.time()
    ended_at: float
    pid: int | None
