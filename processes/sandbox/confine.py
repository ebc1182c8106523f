"""Confine a script's process beyond its environment: no capabilities, no privileges to gain, and Landlock.

Called in the child after fork and before the script runs (never imports django). What is in force
depends on the kernel and the user, and `protections()` says which, for runtick's start-up log. The
serving processes make themselves non-dumpable (`serving_process_harden`), so that without
CAP_SYS_PTRACE no process, even one of the same user, may read their /proc/<pid>/environ (the secret
key, the database URL):

- the script drops every capability (as root too: it keeps uid 0 but loses CAP_SYS_PTRACE and
  CAP_DAC_OVERRIDE; running it as `nobody` instead would need an interpreter outside /root) and sets
  no_new_privs;
- with Landlock (Linux 5.13+; network rules 6.7+, scopes 6.12+): writes only beneath its temporary
  directory (and /dev/null), reads only of the code and libraries it needs (not the project's database
  or logs), no TCP bind or connect, no abstract unix sockets or signals outside its own domain.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Iterable

_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446  # x86_64 and aarch64 alike
_PR_SET_NO_NEW_PRIVS = 38
_RULE_PATH_BENEATH = 1
_CREATE_RULESET_VERSION = 1

# filesystem access rights, by the ABI version that introduced them
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_WRITES_V1 = sum(1 << b for b in range(4, 13))  # remove dir/file, make char/dir/reg/sock/fifo/block/sym
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1

READ = EXECUTE | READ_FILE | READ_DIR
# no /proc: other processes' files (environ, cmdline, fds) are none of a script's business
SYSTEM_READ_PATHS = ("/usr", "/lib", "/lib64", "/bin", "/etc", "/sys", "/dev")
_PR_SET_DUMPABLE, _PR_CAPBSET_DROP = 4, 24
_SYS_CAPSET = {"x86_64": 126, "aarch64": 91}.get(os.uname().machine)
_CAP_VERSION_3 = 0x20080522


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


_libc = ctypes.CDLL(None, use_errno=True)


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 where there is none."""
    version = _libc.syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    return max(int(version), 0)


def protections() -> list[str]:
    """What confine() puts in force on this machine, as runtick's start-up log says it."""
    found = ["scripts hold no capabilities (no_new_privs)"]
    abi = landlock_abi()
    if abi >= 1:
        found.append(f"Landlock ABI {abi}: writes only in the run's temporary directory, reads only of code")
    if abi >= 4:
        found.append("no TCP bind or connect")
    if abi >= 6:
        found.append("no abstract unix sockets or signals outside the script")
    else:
        found.append("no Landlock on this kernel: scripts may write wherever their user may")
    return found


def confine_script(module: str, *, root: str, workdir: str) -> None:
    """Confine a script child: its code is the top-level package of `module` under `root`."""
    confine(workdir, [os.path.join(root, module.split(".")[0])])


def confine(workdir: str, code_paths: Iterable[str]) -> None:
    """Confine this process for good (raises OSError if a step the kernel offers fails)."""
    os.environ["TMPDIR"] = workdir  # tempfile's default, /tmp, is out of bounds
    _drop_capabilities()
    abi = landlock_abi()
    if abi >= 1:
        _landlock(abi, workdir, code_paths)


def serving_process_harden() -> None:
    """Make this (serving) process non-dumpable: its /proc/<pid>/environ closes to other processes."""
    _check(_libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0))


def _drop_capabilities() -> None:
    _check(_libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
    cap = 0
    while _libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) == 0 or ctypes.get_errno() == 1:  # EPERM: not root
        cap += 1
        if cap > 63:
            break
    if _SYS_CAPSET is not None:
        header = (ctypes.c_uint32 * 2)(_CAP_VERSION_3, 0)
        data = (ctypes.c_uint32 * 6)()  # effective, permitted, inheritable: twice 32 bits, all empty
        _check(_libc.syscall(_SYS_CAPSET, ctypes.byref(header), ctypes.byref(data)))


def _landlock(abi: int, workdir: str, code_paths: Iterable[str]) -> None:
    fs = READ | WRITE_FILE | _WRITES_V1 | (REFER if abi >= 2 else 0) | (TRUNCATE if abi >= 3 else 0)
    fs |= IOCTL_DEV if abi >= 5 else 0
    attr = _RulesetAttr(
        handled_access_fs=fs,
        handled_access_net=(NET_BIND_TCP | NET_CONNECT_TCP) if abi >= 4 else 0,
        scoped=(SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL) if abi >= 6 else 0,
    )
    size = ctypes.sizeof(_RulesetAttr) if abi >= 6 else (16 if abi >= 4 else 8)
    ruleset = _check(_libc.syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0)))
    try:
        prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))}
        reads = [*SYSTEM_READ_PATHS, *prefixes, *code_paths]
        for path in reads:
            _allow(ruleset, path, READ)
        _allow(ruleset, "/dev/null", READ_FILE | WRITE_FILE | (TRUNCATE if abi >= 3 else 0))
        _allow(ruleset, workdir, fs & ~(IOCTL_DEV))
        _check(_libc.syscall(_SYS_RESTRICT_SELF, ruleset, ctypes.c_uint32(0)))
    finally:
        os.close(ruleset)


def _allow(ruleset: int, path: str, access: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # a path this machine does not have
    try:
        if not os.path.isdir(path):
            access &= READ_FILE | WRITE_FILE | EXECUTE | TRUNCATE | IOCTL_DEV  # file rights only
        rule = _PathBeneath(allowed_access=access, parent_fd=fd)
        _check(_libc.syscall(_SYS_ADD_RULE, ruleset, ctypes.c_int(_RULE_PATH_BENEATH), ctypes.byref(rule), ctypes.c_uint32(0)))
    finally:
        os.close(fd)


def _check(result: int) -> int:
    if result < 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))
    return result
