"""Suite-wide: which shape the suite runs in, and database connections that let the test database go."""

import os

import pytest
from django.conf import settings
from django.db import connections

NOT_SCALED = "the scaled shape needs DATABASE_URL (PostgreSQL) and REDIS_URL: run `make test-scaled`"


def scaled_shape() -> bool:
    return settings.DATABASES["default"]["ENGINE"].endswith("postgresql") and settings.CHANNEL_LAYERS["default"][
        "BACKEND"
    ].startswith("channels_redis")


def pytest_sessionstart(session):
    # make test-scaled must run against PostgreSQL and Redis, never fall back to the embedded shape
    if os.environ.get("DAWN_REQUIRE_SCALED") and not scaled_shape():
        pytest.exit(NOT_SCALED, returncode=2)


@pytest.fixture(autouse=True)
def _shape(request):
    if request.node.get_closest_marker("scaled") and not scaled_shape():
        pytest.skip(NOT_SCALED)


@pytest.fixture(scope="session", autouse=True)
def _short_lived_connections():
    # Async tests reach the database from worker threads (database_sync_to_async, the dispatcher's
    # executor); persistent connections there would keep PostgreSQL from dropping the test database.
    connections.settings["default"]["CONN_MAX_AGE"] = 0


@pytest.fixture(autouse=True)
def _fresh_health_probe():
    # /health/'s write probe is shared for a second, and its report logs changes: a test must see neither
    # the probe nor the failing components of the test before it
    from consciousness import health

    health._PROBE.at = None
    health._WATCH.failing, health._WATCH.healthy_once = None, False


@pytest.fixture(autouse=True)
def _fresh_channel_layer():
    # Each async test runs on an event loop of its own, and a channel layer is meant for one loop.
    # channels_redis keeps per-channel asyncio locks that outlive a receive cancelled while waiting
    # (its ChannelLock counts the waiter and never uncounts it); one bound to a finished test's loop
    # fails every receive of the next test ("bound to a different event loop"). A server has one loop;
    # the suite takes a new layer per test, as a server process would have one of its own.
    yield
    from channels.layers import channel_layers

    channel_layers.backends.clear()


@pytest.fixture
def open_writes(settings):
    """Local play, as `make run` has it: writes need no user from loopback clients (consciousness.access)."""
    settings.DAWN_OPEN_WRITES = True


# what a browser on the same machine brings to /ws: an allowed Origin, from a loopback address
LOCAL_BROWSER = {"headers": [(b"origin", b"http://localhost:5173")], "client": ("127.0.0.1", 50123)}


def local_browser(communicator):
    """A WebsocketCommunicator as a local browser's socket (its scope is read when it connects)."""
    communicator.scope["headers"] = [*communicator.scope.get("headers", []), *LOCAL_BROWSER["headers"]]
    communicator.scope["client"] = LOCAL_BROWSER["client"]
    return communicator


@pytest.fixture
def write_locked(monkeypatch):
    """A real second connection that holds the database's write lock while the context lasts (SQLite:
    BEGIN IMMEDIATE on the same file; PostgreSQL: the tables locked against writes), with the lock timeout
    of every new connection cut to `timeout` seconds so that the tests need not wait the real bound."""
    import asyncio
    import contextlib
    import sqlite3

    from django.db import connection

    options = connections.settings["default"].setdefault("OPTIONS", {})

    @contextlib.contextmanager
    def lock(*tables: str, timeout: float = 0.3):
        if connection.vendor == "sqlite":
            monkeypatch.setitem(options, "timeout", timeout)
        else:
            ms = int(timeout * 1000)
            monkeypatch.setitem(options, "options", f"-c lock_timeout={ms} -c statement_timeout=60000")
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            connections.close_all()  # the next query connects with the short timeout
        # (in an async test every query runs in a thread that connects afresh: CONN_MAX_AGE is 0 here)
        if connection.vendor == "sqlite":
            holder = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")
        else:
            import psycopg

            params = connection.get_connection_params()
            params.pop("cursor_factory", None)
            params.pop("context", None)
            holder = psycopg.connect(**{k: v for k, v in params.items() if k != "options"})
            for table in tables:
                holder.execute(f'LOCK TABLE "{table}" IN EXCLUSIVE MODE')  # reads pass, writes wait
        try:
            yield
        finally:
            holder.rollback()
            holder.close()

    return lock
