"""The runtick tests' shared reference: one uninterrupted headless run per session."""

import pytest

from tests.support import Site

HEADLESS = ("runtick", "--no-serve", "--no-processes", "--seed", "7", "--rate", "200", "--until", "400")


@pytest.fixture(scope="session")
def reference(tmp_path_factory):
    """An uninterrupted headless run: the series every other run must reproduce (restarts, pauses...)."""
    site = Site(tmp_path_factory.mktemp("reference")).migrate()
    site.manage(*HEADLESS)
    return site.export()
