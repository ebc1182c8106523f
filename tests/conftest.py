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
