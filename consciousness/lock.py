"""One engine per database: a lock held for runtick's lifetime and released by the OS if it dies."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from django.db import connections

# pg_advisory_lock key: "DAWN" in ASCII, so it is recognisable in pg_locks
_PG_LOCK_KEY = 0x4441574E


class EngineLocked(RuntimeError):
    """Another runtick already drives this database."""


class EngineLock:
    """Exclusive for the whole process: an advisory lock on PostgreSQL, a file lock beside SQLite."""

    def __init__(self, alias: str = "default") -> None:
        self.alias = alias
        self._file = None
        self._pg = None

    def acquire(self) -> EngineLock:
        wrapper = connections[self.alias]
        if wrapper.vendor == "postgresql":
            self._acquire_pg(wrapper)
        elif wrapper.vendor == "sqlite":
            self._acquire_file(str(wrapper.settings_dict["NAME"]))
        return self

    def _acquire_pg(self, wrapper) -> None:
        # a connection of its own: the lock lives exactly as long as this process holds it open
        raw = wrapper.get_new_connection(wrapper.get_connection_params())
        raw.autocommit = True
        with raw.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [_PG_LOCK_KEY])
            (locked,) = cursor.fetchone()
        if not locked:
            raw.close()
            name = wrapper.settings_dict["NAME"]
            raise EngineLocked(f"another runtick is already running against the PostgreSQL database {name!r}")
        self._pg = raw

    def _acquire_file(self, name: str) -> None:
        if name == ":memory:" or name.startswith("file:") or "mode=memory" in name:
            return  # a private in-memory database cannot be shared with another process
        path = Path(f"{name}.runtick.lock")
        handle = open(path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise EngineLocked(f"another runtick (pid {holder}) is already running against {name}") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._pg is not None:
            try:
                self._pg.close()
            finally:
                self._pg = None
        if self._file is not None:
            try:
                fcntl.flock(self._file, fcntl.LOCK_UN)
            finally:
                self._file.close()
                self._file = None

    def __enter__(self) -> EngineLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
