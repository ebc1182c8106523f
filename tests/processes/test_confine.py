"""A confined process: no capabilities, writes only in its directory, no reads of the project's data, no TCP."""

import json
import subprocess
import sys
import textwrap

import pytest

from processes.sandbox.confine import landlock_abi
from tests.support import ROOT

PROBE = textwrap.dedent(
    """
    import json, os, socket, sys, tempfile
    from processes.sandbox.confine import confine, serving_process_harden
    serving_process_harden()
    workdir = tempfile.mkdtemp()
    pid = os.fork()
    if pid == 0:
        confine(workdir, [os.path.join(sys.argv[1], "processes")])
        seen = {}
        def attempt(name, action):
            try:
                action()
                seen[name] = "allowed"
            except OSError as exc:
                seen[name] = exc.strerror
        attempt("write_workdir", lambda: open(os.path.join(workdir, "out.txt"), "w").write("x"))
        attempt("write_project", lambda: open(os.path.join(sys.argv[1], "escape.txt"), "w"))
        attempt("write_tmp", lambda: open("/tmp/dawn-escape.txt", "w"))
        attempt("read_project", lambda: open(os.path.join(sys.argv[1], "README.md")).read())
        attempt("read_server_environ", lambda: open(f"/proc/{os.getppid()}/environ").read())
        attempt("connect_tcp", lambda: socket.create_connection(("127.0.0.1", 5432), timeout=1).close())
        import numpy, PIL.Image  # the code a script needs still loads
        seen["imports"] = "allowed"
        print(json.dumps(seen), flush=True)
        os._exit(0)
    os.waitpid(pid, 0)
    """
)


@pytest.fixture(scope="module")
def seen():
    completed = subprocess.run(
        [sys.executable, "-c", PROBE, str(ROOT)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def test_a_confined_script_still_writes_its_own_directory_and_loads_its_code(seen):
    assert seen["write_workdir"] == "allowed" and seen["imports"] == "allowed"


def test_the_serving_process_environment_is_closed_to_a_script(seen):
    assert seen["read_server_environ"] != "allowed"


@pytest.mark.skipif(landlock_abi() < 1, reason="the kernel has no Landlock")
@pytest.mark.parametrize("attempt", ["write_project", "write_tmp", "read_project"])
def test_a_confined_script_cannot_touch_files_outside_its_directory(seen, attempt):
    assert seen[attempt] != "allowed"


@pytest.mark.skipif(landlock_abi() < 4, reason="the kernel's Landlock has no network rules")
def test_a_confined_script_cannot_open_tcp_connections(seen):
    assert seen["connect_tcp"] != "allowed"
