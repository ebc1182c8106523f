"""runtick never trusts a stored snapshot blindly, and never discards persisted ticks silently."""

import sqlite3
import uuid

import pytest

from tests.support import Site

RUN = ("runtick", "--no-serve", "--no-processes", "--seed", "7", "--rate", "500")


@pytest.fixture
def site(tmp_path):
    site = Site(tmp_path).migrate()
    site.manage(*RUN, "--ticks", "30")
    return site


def tamper(site: Site, sql: str, *params) -> None:
    with sqlite3.connect(site.db_path) as conn:
        conn.execute(sql, params)


@pytest.mark.parametrize(
    "sql, params, what",
    [
        ("UPDATE consciousness_enginesnapshot SET tick_number = 10", (), "tick number"),
        ("UPDATE consciousness_enginesnapshot SET tick_number = 1000000", (), "tick number"),
        ("UPDATE consciousness_enginesnapshot SET epoch = ?", (uuid.uuid4().hex,), "epoch"),
        ("UPDATE consciousness_enginesnapshot SET seed = 8", (), "seed"),
        (
            "UPDATE consciousness_enginesnapshot SET state = json_set(state, '$.state.tick_number', 1000000)",
            (),
            "tick number",
        ),
    ],
)
def test_a_snapshot_row_that_disagrees_with_its_state_is_refused_with_the_reset_hint(site, sql, params, what):
    tamper(site, sql, *params)
    refused = site.manage(*RUN, "--ticks", "5", check=False)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert what in refused.stderr and "--reset" in refused.stderr
    assert [t["tick_number"] for t in site.export()] == list(range(1, 31))  # nothing discarded


def copy_last_tick(site: Site, count: int) -> None:
    with sqlite3.connect(site.db_path) as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(consciousness_tick)")]
        others = ", ".join(c for c in columns if c != "tick_number")
        for n in range(31, 31 + count):
            conn.execute(
                f"INSERT INTO consciousness_tick (tick_number, {others}) "
                f"SELECT ?, {others} FROM consciousness_tick WHERE tick_number = 30",
                (n,),
            )


def test_ticks_beyond_the_snapshot_within_one_flush_are_discarded_and_the_range_logged(site):
    copy_last_tick(site, 3)
    resumed = site.manage(*RUN, "--ticks", "2")
    assert "discarded ticks 31..33" in resumed.stderr
    assert [t["tick_number"] for t in site.export()] == list(range(1, 33))


def test_more_ticks_beyond_the_snapshot_than_one_flush_holds_are_never_discarded(site):
    copy_last_tick(site, 600)  # one flush at 500 Hz holds at most 501
    refused = site.manage(*RUN, "--ticks", "2", check=False)
    assert refused.returncode != 0 and "refusing to discard" in refused.stderr and "--reset" in refused.stderr
    assert len(site.export()) == 630
