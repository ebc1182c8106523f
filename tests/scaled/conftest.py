"""The scaled shape for real: PostgreSQL databases of their own, Redis under a prefix of its own."""

from __future__ import annotations

import os
import uuid

import pytest

from tests.support import Site, postgres_admin, postgres_url


@pytest.fixture
def new_database():
    """Make empty PostgreSQL databases beside the one DATABASE_URL names; dropped afterwards."""
    base = os.environ["DATABASE_URL"]
    made: list[str] = []

    def make() -> str:
        name = f"dawn_test_{uuid.uuid4().hex[:12]}"
        with postgres_admin(base) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        made.append(name)
        return postgres_url(base, name)

    yield make
    with postgres_admin(base) as conn:
        for name in made:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def scaled_site(tmp_path, new_database):
    """A migrated DAWN on its own PostgreSQL database and Redis prefix."""

    def make(name: str = "site") -> Site:
        folder = tmp_path / name
        folder.mkdir()
        return Site(folder, database_url=new_database(), redis_url=os.environ["REDIS_URL"]).migrate()

    return make
