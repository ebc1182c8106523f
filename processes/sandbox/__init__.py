"""Run registered analysis scripts in isolated, resource-limited subprocesses (asyncio, never django).

Each execution gets its own session/process group, a minimal environment, a fresh temporary working
directory, RLIMIT_CPU/RLIMIT_AS/RLIMIT_CORE, a wall-clock timeout and capped output. Children are forked
from a pre-warmed launcher (``python -m processes.sandbox serve``, server.py) when ``warm`` is set,
otherwise (or when the launcher is unavailable) started cold with ``python -m processes.sandbox run``;
both paths call the same entry point (entry.py), so they behave the same.

One module per job: pipes (fd plumbing), lines (stderr as progress lines), reasons (outcomes and failure
reasons), spec (what runs, what it reports), children (a running script, the cold start), client (the
launcher's client), server (the fork server), entry (a script's process), supervise, runner.

Limitations:
- A script's child that calls setsid() (or setpgid) leaves the process group and so escapes the group
  kill. Warm: the launcher adopts it as subreaper once its parent dies and kills it within a quarter
  second. Cold: it is reparented to init and survives; holding the pipes it costs DRAIN_S before
  execute() returns. Plain forks never survive.
- Warm children run the code the launcher imported at start(): after editing a script, restart the
  server (or the Runner) to pick it up.
- Warm children inherit the launcher's address space (numpy, PIL, the scripts: about 120 MB virtual),
  which counts against RLIMIT_AS as it would after the same imports in a cold start.
- No RLIMIT_NPROC: it counts all processes of the user, not of the script.
"""
from processes.sandbox.lines import LINE_MAX_CHARS
from processes.sandbox.reasons import Outcome
from processes.sandbox.runner import Runner
from processes.sandbox.spec import Execution, ScriptSpec, UnknownScript

__all__ = ["LINE_MAX_CHARS", "Execution", "Outcome", "Runner", "ScriptSpec", "UnknownScript"]
