"""How a run ended: the outcomes, defined once, and the reason a failed script is given."""
from __future__ import annotations

import enum
import json
import signal
from collections.abc import Iterable

MEMORY_HINTS = (
    "MemoryError", "Cannot allocate memory", "memory allocation failed", "out of memory", "bad_alloc",
)


class Outcome(enum.StrEnum):
    """The ways a run ends (ProcessRun.Status adds the states before and around them)."""

    COMPLETED = "completed"
    FAILED = "failed"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"


def _memory_hint(tail: Iterable[str]) -> str | None:
    for line in reversed(list(tail)):
        for hint in MEMORY_HINTS:
            if hint in line:
                return hint
    return None


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def exit_reason(exit_code: int | None, signum: int | None, tail: Iterable[str]) -> str:
    """Why a script that exited non-zero (or on a signal) failed, from its status and last stderr lines."""
    tail = list(tail)
    memory = _memory_hint(tail)
    if signum is not None:
        if signum == signal.SIGXCPU:
            return "CPU time limit exceeded (SIGXCPU)"
        if memory:
            return f"memory limit exceeded (killed by {_signal_name(signum)})"
        return f"killed by {_signal_name(signum)}"
    if memory:
        return f"memory limit exceeded ({memory})"
    last = next((line for line in reversed(tail) if line.strip()), "")
    return f"exit code {exit_code}: {last}" if last else f"exit code {exit_code}"


def result_of(stdout: bytes) -> tuple[dict | None, str]:
    """(the result object, "") from a script's stdout, or (None, why it is not one)."""
    try:
        result = json.loads(stdout.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None, "output is not JSON"
    if not isinstance(result, dict):
        return None, f"output is not a JSON object (got {type(result).__name__})"
    return result, ""
