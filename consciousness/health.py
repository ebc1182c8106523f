"""What /health/ checks, component by component: the engine, database writes, persistence, the channel layer.

Each component gets a section with a `status` string; the report lists the failing ones by name and is
healthy only when none fails (the rules are the README's "Health"). Persistence is judged from what the
engine reports about its history writer: read directly where the engine runs in this process
(`RUNTIME`, filled by runtick), else from the status envelope runtick publishes on the stream
(groups.STREAM_STATUS, kept by the hub), else from the newest persisted tick alone.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import F

from consciousness import selectors
from consciousness.hub import StreamHub, stream_hub_latest
from consciousness.models import EngineSnapshot

logger = logging.getLogger(__name__)

# the write probe gives up after this long: a probe must answer fast, even while a writer holds the lock
PROBE_TIMEOUT_S = 0.5
# at most one write probe this often per process, however often /health/ is polled: a flood of polls must
# not contend with the history writer for the write lock
PROBE_EVERY_S = 1.0

ENGINE = "engine"
DATABASE = "database"
PERSISTENCE = "persistence"
CHANNEL_LAYER = "channel_layer"
COMPONENTS = (ENGINE, DATABASE, PERSISTENCE, CHANNEL_LAYER)

# PostgreSQL SQLSTATEs (and SQLite messages) of a database that is there but cannot take the write now
_FAULT_SQLSTATES = {"55P03": "locked", "57014": "timeout", "53100": "disk full", "25006": "read-only"}
_FAULT_MESSAGES = (
    ("database is locked", "locked"),
    ("database table is locked", "locked"),
    ("lock timeout", "locked"),
    ("statement timeout", "timeout"),
    ("disk is full", "disk full"),
    ("no space left", "disk full"),
    ("readonly database", "read-only"),
    ("read-only", "read-only"),
)


def database_fault(exc: BaseException) -> str | None:
    """"locked", "timeout", "disk full", "read-only" or "unreachable" when `exc` says the database cannot
    take the operation now (a retry later may succeed); None for any other error."""
    if not isinstance(exc, DatabaseError):
        return None
    cause = exc.__cause__ or exc
    sqlstate = getattr(cause, "sqlstate", None) or ""
    if sqlstate in _FAULT_SQLSTATES:
        return _FAULT_SQLSTATES[sqlstate]
    if sqlstate.startswith("08") or sqlstate in ("57P01", "57P03", "53300"):
        return "unreachable"  # connection failures, an administrator's shutdown, too many connections
    text = str(exc).lower()
    for fragment, fault in _FAULT_MESSAGES:
        if fragment in text:
            return fault
    if "connection" in text and ("refused" in text or "failed" in text or "closed" in text):
        return "unreachable"
    return None


def _error_text(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


class RuntimeStatus:
    """The engine running in this process, if any: runtick attaches what reports its status (EngineStatus)."""

    def __init__(self) -> None:
        self.status: Callable[[], dict] | None = None

    def attach(self, *, status: Callable[[], dict]) -> None:
        self.status = status

    def detach(self) -> None:
        self.status = None


RUNTIME = RuntimeStatus()


def database_write_check() -> dict:
    """Take the database's write lock and write nothing (rolled back), giving up after PROBE_TIMEOUT_S."""
    vendor = connection.vendor
    try:
        connection.ensure_connection()
        if vendor == "sqlite":
            # the busy timeout is per connection: shortened for the probe, restored after it
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA busy_timeout")
                (busy_ms,) = cursor.fetchone()
                cursor.execute(f"PRAGMA busy_timeout = {int(PROBE_TIMEOUT_S * 1000)}")
        try:
            with transaction.atomic():
                if vendor == "postgresql":
                    with connection.cursor() as cursor:
                        ms = int(PROBE_TIMEOUT_S * 1000)
                        cursor.execute(f"SET LOCAL lock_timeout = {ms}")
                        cursor.execute(f"SET LOCAL statement_timeout = {ms * 4}")
                # an UPDATE that matches no row still needs the write lock and a writable database
                EngineSnapshot.objects.filter(pk=-1).update(tick_number=F("tick_number"))
                transaction.set_rollback(True)
        finally:
            if vendor == "sqlite" and connection.connection is not None:
                with connection.cursor() as cursor:
                    cursor.execute(f"PRAGMA busy_timeout = {int(busy_ms)}")
    except Exception as exc:  # reported, never raised: a probe that fails with a 500 tells nothing
        return {"status": "error", "fault": database_fault(exc), "error": _error_text(exc)}
    return {"status": "ok", "fault": None, "error": None}


class _Probe:
    """The last write probe's result, shared by the threads serving /health/ until it is PROBE_EVERY_S old."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.at: float | None = None
        self.result: dict = {}

    def section(self) -> dict:
        with self.lock:  # a poll that comes while a probe runs waits for its result
            if self.at is None or time.monotonic() - self.at >= PROBE_EVERY_S:
                self.result, self.at = database_write_check(), time.monotonic()
            return self.result


_PROBE = _Probe()


class _FailingWatch:
    """Logs each change of the failing components once (the 503 polls themselves go unlogged): at WARNING
    once the process has been healthy, at INFO while it starts (no tick heard or persisted yet)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.failing: list[str] | None = None  # None: no report yet
        self.healthy_once = False

    def note(self, failing: list[str], sections: dict) -> None:
        with self.lock:
            previous, self.failing, started = self.failing, failing, self.healthy_once
            self.healthy_once = started or not failing
        if failing == (previous or []):  # no change (a first report that is healthy is none either)
            return
        if failing:
            details = "; ".join(f"{name}: {_summary(sections[name])}" for name in failing)
            level = logging.WARNING if started else logging.INFO
            logger.log(level, "health: failing %s (%s)", ", ".join(failing), details)
        else:
            logger.info("health: ok again" if started else "health: ok")


def _summary(section: dict) -> str:
    return ", ".join(str(section[key]) for key in ("status", "fault", "error") if section.get(key))


_WATCH = _FailingWatch()


def _newest_persisted() -> dict | None:
    try:
        row = selectors.tick_latest()
    except Exception:  # the database section says what is wrong with it
        return None
    return row.as_tick_data() if row is not None else None


def history_stale_after() -> float:
    """How old the newest persisted tick may be while the engine ticks: the history lags the stream by up to
    one flush interval."""
    return float(settings.DAWN_CONFIG["stream"]["stale_after"]) + float(
        settings.DAWN_CONFIG["persistence"]["flush_interval"]
    )


def engine_section(hub: StreamHub | None, persisted: dict | None, now: float) -> dict:
    """The engine is ticking while its newest tick, as the stream or the history shows it, is recent, or paused
    while it says so (a control command) and has said so lately."""
    stale_after = float(settings.DAWN_CONFIG["stream"]["stale_after"])
    streamed = hub.latest_tick if hub is not None else None
    candidates = []
    if streamed is not None:
        candidates.append((now - streamed["timestamp"], stale_after, streamed, "stream"))
    if persisted is not None:
        candidates.append((now - persisted["timestamp"], history_stale_after(), persisted, "database"))
    if not candidates:
        status, tick, age, source = "no ticks yet", None, None, "none"
    else:
        fresh = [c for c in candidates if c[0] <= c[1]]
        age, _limit, tick, source = min(fresh or candidates, key=lambda c: c[0])
        status = "ticking" if fresh else "stale"
    if hub is not None and hub.engine_paused(within=stale_after):
        status = "paused"  # held by a control command, and heard from lately: no tick is due
    return {
        "status": status,
        "tick_number": tick["tick_number"] if tick else None,
        "last_tick_age_s": round(age, 3) if age is not None else None,
        "stale_after_s": stale_after,
        "source": source,
    }


_PERSISTENCE_FIGURES = (
    "backlog_ticks", "oldest_unpersisted_tick", "oldest_unpersisted_age_s", "last_flush_age_s", "failures",
    "consecutive_failures", "dropped_ticks", "max_backlog", "last_error",
)
_AGES = ("oldest_unpersisted_age_s", "last_flush_age_s")


def _engine_status(hub: StreamHub | None, now: float) -> tuple[dict | None, float, str]:
    """The engine's own status report, how old it is, and where it came from."""
    local = RUNTIME.status
    if local is not None:
        return local(), 0.0, "engine"
    if hub is not None and hub.engine_status is not None and hub.engine_status_at is not None:
        age = now - hub.engine_status_at
        if age <= float(settings.DAWN_CONFIG["stream"]["stale_after"]):
            return hub.engine_status, age, "stream"
    return None, 0.0, "none"


def persistence_section(
    report: dict | None, report_age: float, source: str, persisted: dict | None, now: float
) -> dict:
    """Ticks are being persisted unless a flush failed last, or a tick has waited past a flush interval plus
    stale_after; with no report from the engine, only the newest persisted tick can say it is fine."""
    config = settings.DAWN_CONFIG
    limit = float(config["persistence"]["flush_interval"]) + float(config["stream"]["stale_after"])
    section: dict[str, Any] = dict.fromkeys(_PERSISTENCE_FIGURES)
    section["newest_persisted_tick"] = persisted["tick_number"] if persisted else None
    section["newest_persisted_age_s"] = round(now - persisted["timestamp"], 3) if persisted else None
    figures = (report or {}).get("persistence")
    if isinstance(figures, dict):
        for name in _PERSISTENCE_FIGURES:
            section[name] = figures.get(name)
        for name in _AGES:  # as old as the report, plus the time it took to get here
            if isinstance(section[name], (int, float)):
                section[name] = round(section[name] + report_age, 3)
        waited = section["oldest_unpersisted_age_s"]
        if section["consecutive_failures"]:
            status = "failing"
        elif waited is not None and waited > limit:
            status = "behind"
        else:
            status = "ok"
    else:
        source = "database" if persisted else "none"
        fresh = persisted is not None and section["newest_persisted_age_s"] <= limit
        # old ticks alone cannot tell a stopped engine from a failing write
        status = "ok" if fresh else "unknown"
    section["status"] = status
    section["source"] = source
    return section


def channel_layer_section(hub: StreamHub | None, engine: dict) -> dict:
    """The stream reaches this process: its hub is a member of the stream group, receives, and hears the ticks
    the engine is producing (a process that serves no stream has nothing to check)."""
    if hub is None:
        return {"status": "unused", "joined": None, "receive_failures": None, "error": None}
    member = hub.membership
    status = "ok"
    if member["receive_failures"]:
        status = "unreachable"
    elif not member["joined"]:
        status = "not joined"
    elif engine["status"] == "ticking" and engine["source"] == "database":
        status = "no ticks"  # the engine ticks (the history says so) but none of its ticks reach this process
    return {"status": status, **member}


_FAILING = {
    ENGINE: lambda s: s["status"] in ("stale", "no ticks yet"),
    DATABASE: lambda s: s["status"] != "ok",
    PERSISTENCE: lambda s: s["status"] in ("failing", "behind"),
    CHANNEL_LAYER: lambda s: s["status"] not in ("ok", "unused"),
}


def health_report() -> dict:
    """The /health/ body: each component's section and the names of the failing ones (healthy: none)."""
    now = time.time()
    hub = stream_hub_latest()
    persisted = _newest_persisted()
    engine = engine_section(hub, persisted, now)
    report, report_age, source = _engine_status(hub, now)
    sections = {
        ENGINE: engine,
        DATABASE: _PROBE.section(),
        PERSISTENCE: persistence_section(report, report_age, source, persisted, now),
        CHANNEL_LAYER: channel_layer_section(hub, engine),
    }
    failing = [name for name in COMPONENTS if _FAILING[name](sections[name])]
    _WATCH.note(failing, sections)
    return {"status": "unhealthy" if failing else "ok", "failing": failing, **sections}
