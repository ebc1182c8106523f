"""runtick against PostgreSQL and Redis: the advisory lock, clean signals and an exact resume."""

import pytest

from tests.support import without_timestamps

pytestmark = pytest.mark.scaled

HEADLESS = ("runtick", "--no-serve", "--no-processes", "--seed", "7", "--rate", "200", "--until", "300")
# the rate is not part of the series: slower, so that the run is still going when the checks come (13 s
# from tick 40 to 300: the refused second runtick takes a few seconds to start on a loaded machine)
SLOWER = (*HEADLESS[:-4], "--rate", "20", "--until", "300")


def test_interrupted_runs_resume_to_the_same_series_and_a_second_engine_is_refused(scaled_site):
    reference = scaled_site("reference")
    reference.manage(*HEADLESS)
    expected = reference.export()
    assert [t["tick_number"] for t in expected] == list(range(1, 301))

    site = scaled_site("interrupted")
    first = site.spawn(*SLOWER)
    site.wait_for_tick(40, first)
    # one engine per database: the PostgreSQL advisory lock turns a second runtick away
    second = site.manage("runtick", "--no-serve", "--no-processes", "--ticks", "3", check=False)
    assert second.returncode != 0
    assert "already running against the PostgreSQL database" in second.stderr and "Traceback" not in second.stderr
    stopped_at = site.terminate(first)
    assert 40 <= stopped_at < 300

    # the advisory lock goes with the killed process's connection: the next run is not refused
    site.kill_at(stopped_at + 60, site.spawn(*SLOWER))

    site.manage(*HEADLESS)
    resumed = site.export()
    assert [t["tick_number"] for t in resumed] == list(range(1, 301))
    assert without_timestamps(resumed) == without_timestamps(expected)
