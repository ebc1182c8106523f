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
