"""Script entry point and pre-warmed fork server for processes.runner.

Never imports django: it runs in the script children and in the launcher.

Two entry points share ``run_module_main`` so a warm (forked) child and a cold
``python -m processes.launcher run`` child behave the same:

    python -m processes.launcher run --cpu-s 30 --memory-bytes N <module>
    python -m processes.launcher serve --fd <unix socket fd> [<module> ...]

``serve`` pre-imports numpy, PIL and the given modules, then forks one child per
request received on the socket (SOCK_SEQPACKET, JSON messages, stdio fds via
SCM_RIGHTS):

    runner -> launcher  {"op": "spawn", "id", "module", "cpu_s", "memory_bytes", "cwd"} + fds [stdin, stdout, stderr]
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
import importlib
import json
import os
import resource
import selectors
import signal
import socket
import sys
import traceback
from typing import Any, Callable

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_BAD_REQUEST = 2
EXIT_SETUP_FAILED = 127

MAX_MESSAGE = 65536
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
ORPHAN_SWEEP_S = 0.25


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _json_default(value: Any) -> Any:
    # numpy scalars and arrays without importing numpy here.
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def run_module_main(module_name: str) -> int:
    """Read one JSON request on stdin, call ``<module>.run(request, emit)``, print the JSON result; return the exit code.

    0: result written to stdout. 2: the request is not a JSON object, or run()
    raised ValueError (message on one stderr line). 1: anything else
    (traceback on stderr, its last line names the exception, e.g. MemoryError).
    """
    stderr = sys.stderr

    def emit(line: str) -> None:
        stderr.write(_one_line(line) + "\n")
        stderr.flush()

    try:
        raw = sys.stdin.buffer.read()
        sys.stdin.close()
        try:
            request = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            emit(f"bad request: not JSON: {exc}")
            return EXIT_BAD_REQUEST
        if not isinstance(request, dict):
            emit(f"bad request: expected a JSON object, got {type(request).__name__}")
            return EXIT_BAD_REQUEST
        module = importlib.import_module(module_name)
        run = getattr(module, "run", None)
        if not callable(run):
            emit(f"{module_name} has no run(request, emit)")
            return EXIT_ERROR
        try:
            result = run(request, emit)
        except ValueError as exc:
            emit(f"bad request: {exc}")
            return EXIT_BAD_REQUEST
        if not isinstance(result, dict):
            emit(f"run() returned {type(result).__name__}, expected dict")
            return EXIT_ERROR
        try:
            text = json.dumps(result, default=_json_default, allow_nan=False, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            emit(f"result is not JSON serializable: {exc}")
            return EXIT_ERROR
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
        return EXIT_OK
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return EXIT_OK
        if isinstance(code, int):
            return code
        emit(str(code))
        return EXIT_ERROR
    except MemoryError as exc:
        # Print something small: formatting a long traceback may itself fail near the limit.
        try:
            traceback.print_exc(file=stderr)
        except MemoryError:
            pass
        emit(f"MemoryError: {exc}")
        return EXIT_ERROR
    except BaseException:  # noqa: BLE001 - the exit code is the whole interface
        traceback.print_exc(file=stderr)
        stderr.flush()
        return EXIT_ERROR


def apply_limits(cpu_s: int, memory_bytes: int) -> None:
    """Set RLIMIT_CPU (SIGXCPU at cpu_s, SIGKILL a second later), RLIMIT_AS and no core dumps."""
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


_libc: Any = None


def _prctl(option: int, arg: int) -> bool:
    global _libc
    try:
        if _libc is None:
            import ctypes

            _libc = ctypes.CDLL(None, use_errno=True)
        return _libc.prctl(option, arg, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _main_run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="processes.launcher run")
    parser.add_argument("--cpu-s", type=int, required=True)
    parser.add_argument("--memory-bytes", type=int, required=True)
    parser.add_argument("module")
    args = parser.parse_args(argv)
    apply_limits(args.cpu_s, args.memory_bytes)
    sys.argv = [args.module]
    return run_module_main(args.module)


class _Server:
    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.children: dict[int, Any] = {}  # pid -> request id (None for orphans)
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        self.selector = selectors.DefaultSelector()

    def send(self, message: dict) -> None:
        try:
            self.sock.send(json.dumps(message).encode())
        except OSError:
            pass  # runner gone; the recv side notices and shuts down

    def serve(self) -> None:
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
        try:
            data, fds, _flags, _addr = socket.recv_fds(self.sock, MAX_MESSAGE, 3)
        except InterruptedError:
            return True
        except OSError:
            return False
        if not data:
            for fd in fds:
                os.close(fd)
            return False
        try:
            message = json.loads(data)
        except json.JSONDecodeError:
            for fd in fds:
                os.close(fd)
            return True
        if message.get("op") == "spawn":
            self.spawn(message, fds)
        else:
            for fd in fds:
                os.close(fd)
        return True

    def spawn(self, message: dict, fds: list[int]) -> None:
        request_id = message.get("id")
        if len(fds) != 3:
            for fd in fds:
                os.close(fd)
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
        for fd in fds:
            os.close(fd)
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
        code = EXIT_SETUP_FAILED
        try:
            try:
                os.close(sync_r)
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
                os.chdir(message["cwd"])
                apply_limits(int(message["cpu_s"]), int(message["memory_bytes"]))
                # The launcher never touched its stdio (/dev/null in, stderr flushed before fork), so the
                # existing sys.std* objects are clean and now write to the handed-over pipes.
                sys.argv = [message["module"]]
                if "numpy" in sys.modules:
                    # A cold start seeds the legacy global RNG from the OS; forked children would share one state.
                    sys.modules["numpy"].random.seed()
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

    def reap(self) -> None:
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
                try:
                    os.killpg(pid, signal.SIGKILL)
                except OSError:
                    pass
            _, status = os.waitpid(pid, 0)
            if request_id is None:
                continue  # an orphan adopted as subreaper
            exit_code = os.waitstatus_to_exitcode(status)
            self.send(
                {
                    "op": "exited",
                    "id": request_id,
                    "pid": pid,
                    "exit_code": exit_code if exit_code >= 0 else None,
                    "signal": -exit_code if exit_code < 0 else None,
                }
            )

    def kill_orphans(self) -> None:
        """Kill adopted processes: a script's descendants that escaped its group kill (setsid)."""
        for pid in _child_pids() - self.children.keys():
            for kill in (os.killpg, os.kill):  # its own group (it may lead one), then itself
                try:
                    kill(pid, signal.SIGKILL)
                except OSError:
                    pass

    def shutdown(self) -> None:
        for pid in list(self.children):
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
        self.sock.close()


def _child_pids() -> set[int]:
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


def _main_serve(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="processes.launcher serve")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("modules", nargs="*")
    args = parser.parse_args(argv)
    sock = socket.socket(fileno=args.fd)
    # Ctrl-C on a dev server must not take the launcher down mid-run; it stops when the socket closes.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    _preload(["numpy", "numpy.random", "PIL.Image", *args.modules])
    _Server(sock).serve()
    return 0


def _preload(modules: list[str]) -> None:
    for name in modules:
        try:
            importlib.import_module(name)
        except BaseException as exc:  # noqa: BLE001 - a broken script fails in its child, with a traceback
            print(f"launcher: preload of {name} failed: {exc!r}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    commands: dict[str, Callable[[list[str]], int]] = {"run": _main_run, "serve": _main_serve}
    if not argv or argv[0] not in commands:
        print("usage: python -m processes.launcher {run,serve} ...", file=sys.stderr)
        return EXIT_BAD_REQUEST
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
