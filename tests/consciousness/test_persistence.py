"""HistoryWriter against a real database: a real write lock, the bound on what waits, the DEBUG query log."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
from django.db import connections
from rest_framework.test import APIClient

from consciousness import health, metrics
from consciousness.models import EngineSnapshot, Tick
from tests.factories import Ticking, sync

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.both_shapes]


def persisted() -> list[int]:
    return list(Tick.objects.order_by("tick_number").values_list("tick_number", flat=True))


async def test_under_debug_the_history_thread_keeps_no_query_log(settings):
    settings.DEBUG = True
    ticking = Ticking()
    try:
        for _ in range(5):
            await ticking.ticks(1)  # each tick one flush: ticks and the snapshot
            await ticking.flushed()
        assert ticking.writer.flushed_ticks == 5
        # Django logs every query of a DEBUG connection, the snapshot's with it, until someone resets the log
        assert ticking.thread(lambda: len(connections["default"].queries_log)) == 0
    finally:
        await ticking.writer.close()


async def test_a_locked_database_keeps_the_ticks_within_the_bound_and_writes_them_once_unlocked(write_locked):
    ticking = Ticking(max_backlog=1000)
    try:
        with write_locked("consciousness_tick", "consciousness_enginesnapshot"):
            await ticking.ticks(1)  # starts a write, which waits for the lock and fails
            await ticking.ticks(9)
            await ticking.flushed()
            await ticking.ticks(1)  # the next flush fails again
            await ticking.flushed()
            status = ticking.writer.status()
            assert status["consecutive_failures"] == 2 and status["backlog_ticks"] == 11
            assert status["oldest_unpersisted_tick"] == 1 and "lock" in status["last_error"]
        await ticking.ticks(1)
        await ticking.flushed()
        assert await sync(persisted)() == list(range(1, 13))
        assert ticking.writer.status()["consecutive_failures"] == 0 and ticking.writer.dropped_ticks == 0
    finally:
        await ticking.writer.close()


async def test_past_the_bound_the_oldest_ticks_go_with_the_range_logged_once_and_counted(write_locked, caplog):
    ticking = Ticking(max_backlog=20)
    client = APIClient()
    loop = SimpleNamespace(ticks_done=0, slots_skipped=0, paused=False, engine=ticking.engine)  # only the writer is looked at
    metrics.ENGINE.attach(loop=loop, history=ticking.writer)
    health.RUNTIME.attach(status=lambda: {"persistence": ticking.writer.status()})
    try:
        with caplog.at_level(logging.INFO, logger="consciousness.persistence"):
            with write_locked("consciousness_tick", "consciousness_enginesnapshot"):
                await ticking.ticks(1)
                await ticking.ticks(49)  # they wait while the write is under way
                await ticking.flushed()  # it failed: the 30 oldest go
                assert ticking.writer.backlog == 20 and ticking.writer.dropped_ticks == 30
                for _ in range(2):  # more ticks, more failed writes: the bound holds
                    await ticking.ticks(5)
                    await ticking.flushed()
                assert ticking.writer.backlog == 20 and ticking.writer.dropped_ticks == 40

                answer = await sync(client.get)("/health/")
                body = answer.json()
                assert answer.status_code == 503 and {"database", "persistence"} <= set(body["failing"])
                assert body["persistence"]["status"] == "failing" and body["persistence"]["source"] == "engine"
                assert body["persistence"]["backlog_ticks"] == 20 and body["persistence"]["dropped_ticks"] == 40
                assert body["database"]["fault"] == "locked"
            # one more over the bound (the failures are not over yet), then a write that works
            await ticking.ticks(1)
            await ticking.flushed()
        # the 41 oldest are gone for good, everything after them persisted with a snapshot of the last
        assert await sync(persisted)() == list(range(42, 62))
        snapshot = await sync(EngineSnapshot.objects.get)()
        assert snapshot.tick_number == 61
        ranges = [r.getMessage() for r in caplog.records if "were dropped unpersisted" in r.getMessage()]
        assert ranges == ["ticks 1..41 (41) were dropped unpersisted: the history has a gap there"]
        starts = [r for r in caplog.records if "dropping the oldest" in r.getMessage()]
        assert len(starts) == 1
        samples = {s.name: s.value for family in metrics.ENGINE.collect() for s in family.samples}
        assert samples["dawn_history_dropped_ticks_total"] == 41 and samples["dawn_history_buffered_ticks"] == 0
        assert (await sync(client.get)("/health/")).json()["persistence"]["status"] == "ok"
    finally:
        metrics.ENGINE.detach()
        health.RUNTIME.detach()
        await ticking.writer.close()
