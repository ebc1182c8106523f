"""The one entry point of a script, warm (forked by the launcher) or cold (`python -m processes.sandbox run`).

A script is a module with ``run(request: dict, emit: Callable[[str], None]) -> dict``. Its process reads one
JSON request on stdin, calls run(), and prints the result as one JSON line on stdout; emit() writes one
progress line on stderr. The exit code is the whole interface:

    EXIT_OK (0)            the result is on stdout
    EXIT_ERROR (1)         anything unexpected: a traceback on stderr, its last line names the exception
    EXIT_BAD_REQUEST (2)   the request is not a JSON object, or run() raised ValueError (one stderr line)
    EXIT_SETUP_FAILED (127) a warm child could not be set up; nothing of the script ran

Never imports django.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import sys
import traceback
from typing import Any

from processes.sandbox.confine import confine_script

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_BAD_REQUEST = 2
EXIT_SETUP_FAILED = 127


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _json_default(value: Any) -> Any:
    # numpy scalars and arrays without importing numpy here.
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _emit(line: str) -> None:
    sys.stderr.write(_one_line(line) + "\n")
    sys.stderr.flush()


def _read_request() -> dict:
    raw = sys.stdin.buffer.read()
    sys.stdin.close()
    try:
        request = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"request is not valid JSON: {exc}") from None
    if not isinstance(request, dict):
        raise ValueError(f"expected a JSON object, got {type(request).__name__}")
    return request


def _bad_request(exc: ValueError) -> int:
    _emit(f"bad request: {exc}")
    return EXIT_BAD_REQUEST


def _call(module_name: str) -> int:
    try:
        request = _read_request()
    except ValueError as exc:
        return _bad_request(exc)
    run = getattr(importlib.import_module(module_name), "run", None)
    if not callable(run):
        _emit(f"{module_name} has no run(request, emit)")
        return EXIT_ERROR
    try:
        result = run(request, _emit)
    except ValueError as exc:
        return _bad_request(exc)
    if not isinstance(result, dict):
        _emit(f"run() returned {type(result).__name__}, expected dict")
        return EXIT_ERROR
    try:
        text = json.dumps(result, default=_json_default, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        _emit(f"result is not JSON serializable: {exc}")
        return EXIT_ERROR
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
    return EXIT_OK


def run_module_main(module_name: str) -> int:
    """Read one JSON request on stdin, call ``<module>.run(request, emit)``, print the result; the exit code."""
    try:
        return _call(module_name)
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return EXIT_OK
        if isinstance(code, int):
            return code
        _emit(str(code))
        return EXIT_ERROR
    except MemoryError as exc:
        # Print something small: formatting a long traceback may itself fail near the limit.
        try:
            traceback.print_exc(file=sys.stderr)
        except MemoryError:
            pass
        _emit(f"MemoryError: {exc}")
        return EXIT_ERROR
    except BaseException:  # noqa: BLE001 - the exit code is the whole interface
        traceback.print_exc(file=sys.stderr)
        sys.stderr.flush()
        return EXIT_ERROR


def apply_limits(cpu_s: int, memory_bytes: int) -> None:
    """Set RLIMIT_CPU (SIGXCPU at cpu_s, SIGKILL a second later), RLIMIT_AS and no core dumps."""
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def main_run(argv: list[str]) -> int:
    """`run [--cpu-s N --memory-bytes N] <module>`: a cold start; without limits, a run by hand."""
    parser = argparse.ArgumentParser(prog="python -m processes.sandbox run")
    parser.add_argument("--cpu-s", type=int)
    parser.add_argument("--memory-bytes", type=int)
    parser.add_argument("module")
    args = parser.parse_args(argv)
    if (args.cpu_s is None) != (args.memory_bytes is None):
        parser.error("--cpu-s and --memory-bytes go together")
    if args.cpu_s is not None:  # started by the runner: limited and confined like a warm child
        apply_limits(args.cpu_s, args.memory_bytes)
        confine_script(args.module, root=os.environ.get("PYTHONPATH", os.getcwd()), workdir=os.getcwd())
    sys.argv = [args.module]
    return run_module_main(args.module)
