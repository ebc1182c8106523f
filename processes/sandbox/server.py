"""The pre-warmed fork server (the launcher): ``python -m processes.sandbox serve --fd N [module ...]``.

Never imports django. ``serve`` pre-imports numpy, PIL and the given modules, then forks one child per
request received on the socket (SOCK_SEQPACKET, JSON messages, stdio fds via SCM_RIGHTS); each child
calls the same ``entry.run_module_main`` as a cold start, so both behave the same:

    runner -> launcher  {"op": "spawn", "id", "module", "cpu_s", "memory_bytes", "cwd"}
                        + fds [stdin, stdout, stderr]
    launcher -> runner  {"op": "ready", "pid"}                       once, after the imports
                        {"op": "started", "id", "pid"}              child set up, run() about to be called
                        {"op": "error", "id", "error"}              nothing is running
                        {"op": "exited", "id", "pid", "exit_code", "signal"}   child reaped

The launcher is a child subreaper, so orphans a script leaves behind are reaped
here rather than piling up as zombies; any child of the launcher that is not a running
script is such an orphan (e.g. one that left its script's process group with setsid()),
and is killed within ORPHAN_SWEEP_S. It exits, killing its children, when the
runner's end of the socket closes.
"""
from __future__ import annotations

import argparse
import ctypes
import importlib
import json
import os
import selectors
import signal
import socket
import sys
from typing import Any

from processes.sandbox.confine import confine_script
from processes.sandbox.entry import EXIT_SETUP_FAILED, apply_limits, run_module_main

MAX_MESSAGE = 65536
ORPHAN_SWEEP_S = 0.25
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, arg: int) -> bool:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(option, arg, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _close_fds(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)


def _kill(pid: int, *kills: Any) -> None:
    for kill in kills:
        try:
            kill(pid, signal.SIGKILL)
        except OSError:
            pass


class Server:
    """Fork one script child per spawn message; report starts and exits; kill orphans."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.children: dict[int, Any] = {}  # pid -> request id
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        self.selector = selectors.DefaultSelector()

    def send(self, message: dict) -> None:
        """Send one message to the runner (a runner gone is noticed on the receiving side)."""
        try:
            self.sock.send(json.dumps(message).encode())
        except OSError:
            pass

    def serve(self) -> None:
        """Serve until the runner's end of the socket closes."""
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(self.wake_w)
        self.selector.register(self.sock, selectors.EVENT_READ)
        self.selector.register(self.wake_r, selectors.EVENT_READ)
        self.send({"op": "ready", "pid": os.getpid()})
        while True:
            for key, _ in self.selector.select(ORPHAN_SWEEP_S):
                if key.fileobj is self.sock:
                    if not self.handle_message():
                        self.shutdown()
                        return
                else:
                    try:
                        while os.read(self.wake_r, 4096):
                            pass
                    except BlockingIOError:
                        pass
            self.reap()
            self.kill_orphans()

    def handle_message(self) -> bool:
        """Take one message; False once the runner is gone."""
        try:
            data, fds, _flags, _addr = socket.recv_fds(self.sock, MAX_MESSAGE, 3)
        except InterruptedError:
            return True
        except OSError:
            return False
        if not data:
            _close_fds(fds)
            return False
        try:
            message = json.loads(data)
        except json.JSONDecodeError:
            message = {}
        if message.get("op") == "spawn":
            self.spawn(message, fds)
        else:
            _close_fds(fds)
        return True

    def spawn(self, message: dict, fds: list[int]) -> None:
        """Fork a child for `message` on the stdio `fds`; answer started, or error if nothing runs."""
        request_id = message.get("id")
        if len(fds) != 3:
            _close_fds(fds)
            self.send({"op": "error", "id": request_id, "error": f"expected 3 fds, got {len(fds)}"})
            return
        sync_r, sync_w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        launcher_pid = os.getpid()
        pid = os.fork()
        if pid == 0:
            self.child(message, fds, sync_r, sync_w, launcher_pid)  # never returns
        os.close(sync_w)
        _close_fds(fds)
        chunks = []
        while chunk := os.read(sync_r, 4096):
            chunks.append(chunk)
        os.close(sync_r)
        if chunks:
            os.waitpid(pid, 0)
            self.send({"op": "error", "id": request_id, "error": b"".join(chunks).decode(errors="replace")})
            return
        self.children[pid] = request_id
        self.send({"op": "started", "id": request_id, "pid": pid})

    def child(self, message: dict, fds: list[int], sync_r: int, sync_w: int, launcher_pid: int) -> None:
        """In the forked child: set up (a failure is written to sync_w), then run the script and exit."""
        code = EXIT_SETUP_FAILED
        try:
            try:
                os.close(sync_r)
                self._child_setup(message, fds, sync_w, launcher_pid)
            except BaseException as exc:  # noqa: BLE001
                os.write(sync_w, f"child setup failed: {exc!r}".encode() or b"?")
                os._exit(EXIT_SETUP_FAILED)
            os.close(sync_w)
            code = run_module_main(message["module"])
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            except BaseException:  # noqa: BLE001
                pass
        finally:
            os._exit(code)

    def _child_setup(self, message: dict, fds: list[int], sync_w: int, launcher_pid: int) -> None:
        os.setsid()
        # Die with the launcher rather than run unsupervised.
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != launcher_pid:
            os._exit(EXIT_SETUP_FAILED)
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGXCPU):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        self.selector.close()
        self.sock.close()
        os.close(self.wake_r)
        os.close(self.wake_w)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        os.closerange(3, sync_w)
        os.closerange(sync_w + 1, 65536)
        root = os.getcwd()  # the launcher runs in the project's root, its PYTHONPATH
        os.chdir(message["cwd"])
        apply_limits(int(message["cpu_s"]), int(message["memory_bytes"]))
        confine_script(message["module"], root=root, workdir=message["cwd"])
        # The launcher never touched its stdio (/dev/null in, stderr flushed before fork), so the
        # existing sys.std* objects are clean and now write to the handed-over pipes.
        sys.argv = [message["module"]]
        if "numpy" in sys.modules:
            # A cold start seeds the legacy global RNG from the OS; forked children would share one state.
            sys.modules["numpy"].random.seed()

    def reap(self) -> None:
        """Reap every exited child; report the scripts' exits."""
        while True:
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if info is None:
                return
            pid = info.si_pid
            request_id = self.children.pop(pid, None)
            if request_id is not None:
                # Kill what the script forked while its pid, and so its group id, is still unreaped.
                _kill(pid, os.killpg)
            _, status = os.waitpid(pid, 0)
            if request_id is None:
                continue  # an orphan adopted as subreaper
            exit_code = os.waitstatus_to_exitcode(status)
            self.send({
                "op": "exited",
                "id": request_id,
                "pid": pid,
                "exit_code": exit_code if exit_code >= 0 else None,
                "signal": -exit_code if exit_code < 0 else None,
            })

    def kill_orphans(self) -> None:
        """Kill adopted processes: a script's descendants that escaped its group kill (setsid)."""
        for pid in child_pids() - self.children.keys():
            _kill(pid, os.killpg, os.kill)  # its own group (it may lead one), then itself

    def shutdown(self) -> None:
        """Kill every running script's group and close the socket."""
        for pid in list(self.children):
            _kill(pid, os.killpg)
        self.sock.close()


def child_pids() -> set[int]:
    """This process's children, from /proc (the per-thread lists, or each process's parent as a fallback)."""
    me = os.getpid()
    pids: set[int] = set()
    try:
        for tid in os.listdir(f"/proc/{me}/task"):
            with open(f"/proc/{me}/task/{tid}/children") as handle:
                pids.update(int(pid) for pid in handle.read().split())
        return pids
    except OSError:
        pass
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    # the parent pid is the 2nd field after the parenthesised command name
                    if int(handle.read().rsplit(")", 1)[1].split()[1]) == me:
                        pids.add(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return pids


def _preload(modules: list[str]) -> None:
    for name in modules:
        try:
            importlib.import_module(name)
        except BaseException as exc:  # noqa: BLE001 - a broken script fails in its child, with a traceback
            print(f"launcher: preload of {name} failed: {exc!r}", file=sys.stderr, flush=True)


def main_serve(argv: list[str]) -> int:
    """`serve --fd N [module ...]`: preload, then serve the runner on the socket fd N."""
    parser = argparse.ArgumentParser(prog="python -m processes.sandbox serve")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("modules", nargs="*")
    args = parser.parse_args(argv)
    sock = socket.socket(fileno=args.fd)
    # Ctrl-C on a dev server must not take the launcher down mid-run; it stops when the socket closes.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    _preload(["numpy", "numpy.random", "PIL.Image", *args.modules])
    Server(sock).serve()
    return 0
