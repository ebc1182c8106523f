"""Runner tests with tiny real scripts (tests/processes/fixtures), warm (forked by the launcher) and cold."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import pytest_asyncio

from processes.sandbox import LINE_MAX_CHARS, Outcome, Runner, ScriptSpec, UnknownScript

ROOT = Path(__file__).resolve().parents[2]
MEMORY = 512 * 1024 * 1024
CAP = 1_000_000
ALLOWED_ENV = {
    "PATH", "LANG", "PYTHONPATH", "PYTHONHASHSEED", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
}


def spec(name: str, **limits) -> ScriptSpec:
    fixture = limits.pop("fixture", name)
    values = {"timeout_s": 2.0, "cpu_s": 5, "memory_bytes": MEMORY, "max_output_bytes": CAP, **limits}
    return ScriptSpec(name, f"tests.processes.fixtures.{fixture}", **values)


REGISTRY = {
    s.name: s
    for s in [
        spec("ok"),
        spec("hang", timeout_s=1.0),
        spec("hog", timeout_s=10.0),  # the cold start and touching the memory take a while on a busy machine
        spec("forker", timeout_s=1.0),
        spec("escaper", timeout_s=5.0),
        spec("crash"),
        spec("broken"),
        spec("badjson"),
        spec("badrequest"),
        spec("spew"),
        spec("envdump"),
        spec("numpy_sum"),
        spec("burn", cpu_s=1, timeout_s=5.0),
        spec("chatter", max_output_bytes=50_000),
    ]
}


def alive(pid: int) -> bool:
    """True if pid runs; a zombie (killed, not yet reaped by init) counts as gone."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def group_members(pgid: int) -> list[int]:
    members = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                members.append(proc.pid)
        except (ProcessLookupError, psutil.NoSuchProcess):
            pass
    return members


async def group_gone(pgid: int, within: float = 1.0) -> bool:
    deadline = time.monotonic() + within
    while group_members(pgid):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


async def gone(pid: int, within: float = 1.0) -> bool:
    deadline = time.monotonic() + within
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


@pytest_asyncio.fixture(params=["warm", "cold"])
async def runner(request):
    r = Runner(REGISTRY, cwd=ROOT, warm=request.param == "warm")
    await r.start()
    if r.warm:
        assert r.launcher_pid is not None
    yield r
    await r.close()


@pytest_asyncio.fixture
async def warm_runner():
    r = Runner(REGISTRY, cwd=ROOT, warm=True)
    await r.start()
    yield r
    await r.close()


@pytest.mark.asyncio
async def test_ok_completes_with_result_and_lines_streamed_live(runner):
    lines: list[tuple[float, str]] = []
    started: list[int] = []

    async def on_line(line: str) -> None:
        lines.append((time.time(), line))

    ex = await runner.execute("ok", {"params": {"a": 1}, "delay": 0.3}, on_line=on_line, on_started=started.append)

    assert ex.status is Outcome.COMPLETED, ex
    assert ex.result == {"echo": {"a": 1}, "steps": 3}
    assert ex.exit_code == 0 and ex.signal is None and ex.reason == ""
    assert [line for _, line in lines] == ["step 1/3", "step 2/3", "step 3/3"]
    # The first line arrived while the script was still sleeping before its second one.
    assert lines[0][0] < ex.ended_at - 0.4
    assert started == [ex.pid]
    assert ex.started_at <= lines[0][0] <= ex.ended_at


@pytest.mark.asyncio
async def test_numpy_script_runs_under_memory_limit(runner):
    ex = await runner.execute("numpy_sum", {"values": [1, 2, 3.5]})
    assert ex.status == "completed", ex
    assert ex.result == {"sum": 6.5, "mean": 6.5 / 3}


@pytest.mark.asyncio
async def test_hang_times_out_and_group_is_killed(runner):
    t0 = time.monotonic()
    ex = await runner.execute("hang", {})
    elapsed = time.monotonic() - t0

    assert ex.status == "timeout"
    assert ex.reason == "timed out after 1.0 s"
    assert ex.signal == signal.SIGKILL
    assert elapsed >= 1.0  # not before the timeout (how much later depends on the machine's load)
    assert not alive(ex.pid)
    assert group_members(ex.pid) == []


@pytest.mark.asyncio
async def test_hog_fails_with_memory_reason(runner):
    ex = await runner.execute("hog", {})
    assert ex.status == "failed"
    assert "memory limit" in ex.reason


@pytest.mark.asyncio
async def test_burn_fails_on_cpu_limit(runner):
    ex = await runner.execute("burn", {})
    assert ex.status == "failed"
    assert ex.signal == signal.SIGXCPU
    assert ex.reason.startswith("CPU time limit exceeded")


@pytest.mark.asyncio
@pytest.mark.parametrize("hang", [False, True])
async def test_forked_child_does_not_survive(runner, hang):
    lines: list[str] = []
    ex = await runner.execute("forker", {"hang": hang}, on_line=lines.append)

    assert ex.status == ("timeout" if hang else "completed"), ex
    child = int(lines[0].split()[1])
    assert await gone(child, within=0.5), f"forked child {child} survived"
    assert group_members(ex.pid) == []


@pytest.mark.asyncio
async def test_a_child_that_leaves_the_group_with_setsid_is_killed_too(warm_runner):
    lines: list[str] = []
    ex = await warm_runner.execute("escaper", {}, on_line=lines.append)

    assert ex.status == "completed", ex
    child = int(lines[0].split()[1])
    # out of the script's group, so the group kill misses it; the launcher adopts it and kills it
    assert await gone(child, within=2.0), f"setsid child {child} survived"


@pytest.mark.asyncio
async def test_crash_fails_with_exit_code_and_message(runner):
    ex = await runner.execute("crash", {})
    assert ex.status == "failed"
    assert ex.exit_code == 1
    assert ex.reason.startswith("exit code 1: ")
    assert "boom: the analysis fell over" in ex.reason


@pytest.mark.asyncio
async def test_module_failing_at_import_fails_the_run_not_the_launcher(runner):
    ex = await runner.execute("broken", {})
    assert ex.status == "failed"
    assert ex.reason == "exit code 1: ImportError: broken on purpose"
    assert (await runner.execute("ok", {})).status == "completed"


@pytest.mark.asyncio
async def test_value_error_is_a_bad_request_exit_code_2(runner):
    ex = await runner.execute("badrequest", {})
    assert ex.status == "failed"
    assert ex.exit_code == 2
    assert ex.reason == "exit code 2: bad request: missing 'n'"
    assert (await runner.execute("badrequest", {"n": 3})).result == {"n": 3}


@pytest.mark.asyncio
async def test_non_json_output_fails(runner):
    ex = await runner.execute("badjson", {})
    assert ex.status == "failed"
    assert ex.exit_code == 0
    assert "not JSON" in ex.reason


@pytest.mark.asyncio
async def test_output_over_cap_fails(runner):
    ex = await runner.execute("spew", {"chunks": 64})  # 4 MiB
    assert ex.status == "failed"
    assert ex.reason == f"output exceeded {CAP} bytes"
    assert not alive(ex.pid)


@pytest.mark.asyncio
async def test_stderr_lines_are_truncated_and_capped(runner):
    lines: list[str] = []
    ex = await runner.execute("chatter", {"lines": 2, "width": 5000}, on_line=lines.append)
    assert ex.status == "completed", ex
    assert [len(line) for line in lines[:2]] == [LINE_MAX_CHARS, LINE_MAX_CHARS]
    assert lines[2] == "tail without newline"

    lines.clear()
    ex = await runner.execute("chatter", {"lines": 5000, "width": 100}, on_line=lines.append)
    assert ex.status == "completed", ex
    assert sum(len(line) + 1 for line in lines[:-1]) <= 50_000
    assert lines[-1].startswith("[further output dropped")


@pytest.mark.asyncio
async def test_environment_is_minimal_and_cwd_is_a_removed_temp_dir(runner, monkeypatch):
    monkeypatch.setenv("DJANGO_SECRET_KEY", "s3cret")
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@db/dawn")
    await runner.close()  # restart so a launcher started now would see the secrets too
    runner = Runner(REGISTRY, cwd=ROOT, warm=runner.warm)
    await runner.start()
    try:
        ex = await runner.execute("envdump", {})
    finally:
        await runner.close()

    assert ex.status == "completed", ex
    info = ex.result
    assert set(info["env"]) == ALLOWED_ENV | {"TMPDIR"}
    assert info["environ"]["TMPDIR"] == info["cwd"]  # temporary files stay inside the run's own directory
    assert info["environ"]["PYTHONPATH"] == str(ROOT)
    assert info["environ"]["LANG"] == "C.UTF-8"
    assert info["environ"]["PYTHONHASHSEED"] == "0"
    assert info["environ"]["OPENBLAS_NUM_THREADS"] == "1"
    assert info["cwd"] != str(ROOT) and os.path.basename(info["cwd"]).startswith("dawn-envdump-")
    assert not os.path.exists(info["cwd"])
    # Own session and process group, limits from the spec, request delivered then stdin at EOF.
    assert info["pid"] == ex.pid == info["pgid"] == info["sid"]
    assert info["rlimit_as"] == MEMORY
    assert info["rlimit_cpu"] == 5
    assert info["rlimit_core"] == 0
    assert info["argv"] == ["tests.processes.fixtures.envdump"]
    assert info["stdin_closed_or_eof"] is True


@pytest.mark.asyncio
async def test_cancel_kills_the_group(runner):
    cancel = asyncio.Event()
    pids: list[int] = []

    def on_started(pid: int) -> None:
        pids.append(pid)
        asyncio.get_running_loop().call_later(0.2, cancel.set)

    ex = await runner.execute("forker", {"hang": True}, on_started=on_started, cancel=cancel)

    assert ex.status == "cancelled" and ex.reason == "cancelled"  # not "timeout": the cancel ended it
    assert pids == [ex.pid]
    assert not alive(ex.pid)
    assert await group_gone(ex.pid)  # SIGKILLed: gone within a second even on a busy machine


@pytest.mark.asyncio
async def test_cancelling_the_execute_task_kills_the_script(runner):
    pids: list[int] = []
    task = asyncio.create_task(runner.execute("hang", {}, on_started=pids.append))
    while not pids:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await gone(pids[0])


@pytest.mark.asyncio
async def test_unknown_name_raises_before_anything_starts(runner, monkeypatch):
    calls = []

    async def spawn(*args, **kwargs):
        calls.append(args)
        raise AssertionError("must not start anything")

    monkeypatch.setattr(runner, "_spawn", spawn)
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with pytest.raises(UnknownScript):
        await runner.execute("processes.scripts.neural_analyzer", {})
    with pytest.raises(ValueError):
        await runner.execute("rm -rf /", {})
    assert calls == []
    assert {p.pid for p in psutil.Process().children(recursive=True)} == before


def test_registry_rejects_modules_outside_the_repo():
    with pytest.raises(ValueError):
        Runner({"json": ScriptSpec("json", "json")}, cwd=ROOT)
    with pytest.raises(ValueError):
        ScriptSpec("bad", "--fd 3")


@pytest.mark.asyncio
async def test_concurrent_executions(runner):
    results = await asyncio.gather(
        *(runner.execute("ok", {"params": i, "delay": 0.2}) for i in range(6)),
        runner.execute("numpy_sum", {"values": [1, 2]}),
        runner.execute("crash", {}),
    )
    # all six were running at one moment: each started before any ended
    assert max(ex.started_at for ex in results[:6]) < min(ex.ended_at for ex in results[:6])
    assert [ex.result["echo"] for ex in results[:6]] == list(range(6))
    assert results[6].result["sum"] == 3.0
    assert results[7].status == "failed"
    assert len({ex.pid for ex in results}) == 8


@pytest.mark.asyncio
async def test_warm_children_are_forked_by_the_launcher(warm_runner):
    ex = await warm_runner.execute("envdump", {})
    assert ex.result["ppid"] == warm_runner.launcher_pid


@pytest.mark.asyncio
async def test_launcher_killed_next_execute_still_works(warm_runner):
    old = warm_runner.launcher_pid
    os.kill(old, signal.SIGKILL)
    ex = await warm_runner.execute("ok", {"params": "after"})
    assert ex.status == "completed" and ex.result["echo"] == "after"

    await warm_runner.start()  # idempotent; restarts the launcher if the background restart has not yet
    assert warm_runner.launcher_pid not in (None, old)
    ex = await warm_runner.execute("envdump", {})
    assert ex.result["ppid"] == warm_runner.launcher_pid


@pytest.mark.asyncio
async def test_launcher_killed_mid_run_fails_the_run_and_kills_the_script(warm_runner):
    pids: list[int] = []
    task = asyncio.create_task(warm_runner.execute("forker", {"hang": True}, on_started=pids.append))
    while not pids:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)
    os.kill(warm_runner.launcher_pid, signal.SIGKILL)
    ex = await asyncio.wait_for(task, 1.0)
    assert ex.status == "failed"
    assert "launcher" in ex.reason
    assert await gone(ex.pid)
    assert await group_gone(ex.pid)


@pytest.mark.asyncio
async def test_close_kills_running_scripts(runner):
    pids: list[int] = []
    task = asyncio.create_task(runner.execute("hang", {}, on_started=pids.append))
    while not pids:
        await asyncio.sleep(0.01)
    await runner.close()
    ex = await asyncio.wait_for(task, 1.0)
    assert ex.status == "failed"
    assert await gone(pids[0])


def test_the_sandbox_does_not_import_django():
    code = "import sys; sys.modules['django'] = None; import processes.sandbox, processes.sandbox.server, processes.sandbox.__main__"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=30)
