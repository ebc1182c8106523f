"""/health/ and REST writes against a really write-locked database; a worker's health from runtick's status."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from consciousness import health
from consciousness.groups import StreamPublisher
from consciousness.hub import stream_hub
from processes.models import ProcessRun
from tests.factories import Ticking, history_make, sync

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.both_shapes]

LOCK_TIMEOUT_S = 0.3  # the tests' lock timeout (the real one is settings.DATABASE_LOCK_TIMEOUT_S)
RUN_TABLES = ("processes_processrun", "django_session", "auth_user")


@pytest.fixture
def probe_every_poll(monkeypatch):
    """A write probe on every /health/ poll (not once a second), for tests that change the database's state."""
    monkeypatch.setattr(health, "PROBE_EVERY_S", 0.0)


def test_health_names_the_database_when_it_cannot_take_writes(write_locked, probe_every_poll, caplog):
    history_make(10)
    api = APIClient()
    assert api.get("/health/").status_code == 200
    with write_locked("consciousness_enginesnapshot", timeout=LOCK_TIMEOUT_S):
        started = time.monotonic()
        response = api.get("/health/")
        waited = time.monotonic() - started
    body = response.json()
    assert response.status_code == 503 and body["failing"] == ["database"], body
    assert body["database"]["status"] == "error" and body["database"]["fault"] == "locked", body["database"]
    assert body["engine"]["status"] == "ticking" and body["persistence"]["status"] == "ok"
    assert waited < 3.0  # the probe gives up after its own short timeout, not the writers' bound
    with caplog.at_level(logging.INFO):
        assert api.get("/health/").status_code == 200
    # the change is logged once, by the report: the 503 answer itself is not logged at ERROR
    changes = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "consciousness.health"]
    assert changes[0][0] == "WARNING"
    assert changes[0][1].startswith("health: failing database (database: error, locked")
    assert changes[1:] == [("INFO", "health: ok again")]
    assert not [r for r in caplog.records if r.name == "django.request"], caplog.text


def test_a_process_not_healthy_yet_says_so_at_info_and_a_later_failure_at_warning(
    write_locked, probe_every_poll, caplog
):
    api = APIClient()
    with caplog.at_level(logging.INFO, logger="consciousness.health"):
        assert api.get("/health/").status_code == 503  # starting: no tick yet
        history_make(10)
        assert api.get("/health/").status_code == 200
        with write_locked("consciousness_enginesnapshot", timeout=LOCK_TIMEOUT_S):
            assert api.get("/health/").status_code == 503
    records = [r for r in caplog.records if r.name == "consciousness.health"]
    lines = [(r.levelname, r.getMessage().split(" (")[0]) for r in records]
    assert lines == [
        ("INFO", "health: failing engine"), ("INFO", "health: ok"), ("WARNING", "health: failing database")
    ]


def test_a_flood_of_health_polls_costs_one_write_probe_a_second(write_locked):
    history_make(10)
    api = APIClient()
    with CaptureQueriesContext(connection) as queries:
        for _ in range(20):
            assert api.get("/health/").status_code == 200
    probes = [q for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
    assert len(probes) == 1, probes
    with write_locked("consciousness_enginesnapshot", timeout=LOCK_TIMEOUT_S):
        assert api.get("/health/").status_code == 200  # the shared result, a second old at most
        time.sleep(health.PROBE_EVERY_S)
        assert api.get("/health/").json()["failing"] == ["database"]  # probed again: it sees the lock


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("write", ["start", "cancel"])
def test_rest_writes_on_a_locked_database_answer_503_with_retry_after(
    open_writes, write_locked, settings, debug, write
):
    settings.DEBUG = debug
    run = ProcessRun.objects.create(script="chaos_engine", process_id="chaos_engine_000001", status="queued")
    writes = {"start": ("/api/runs/", {"script": "chaos_engine"}), "cancel": (f"/api/runs/{run.pk}/cancel/", {})}
    path, body = writes[write]
    api = APIClient(raise_request_exception=False)
    with write_locked(*RUN_TABLES, timeout=LOCK_TIMEOUT_S):
        started = time.monotonic()
        response = api.post(path, body, format="json")
        waited = time.monotonic() - started
    assert response.status_code == 503, response.content
    assert response["Content-Type"] == "application/json"
    assert "the database (locked) cannot take this now" in response.json()["error"]
    assert response["Retry-After"] == str(settings.DATABASE_RETRY_AFTER_S)
    assert waited < LOCK_TIMEOUT_S + 3.0
    assert api.post(path, body, format="json").status_code in (200, 202)  # and fine once the lock is gone


@pytest.mark.parametrize("debug", [False, True])
def test_a_login_on_a_locked_database_is_a_503_page_not_a_500(write_locked, client, settings, debug):
    settings.DEBUG = debug
    get_user_model().objects.create_superuser("admin", "a@example.com", "pw")
    with write_locked(*RUN_TABLES, timeout=LOCK_TIMEOUT_S):
        response = client.post("/admin/login/", {"username": "admin", "password": "pw", "next": "/admin/"})
    assert response.status_code == 503 and response["Retry-After"] == str(settings.DATABASE_RETRY_AFTER_S)
    assert response["Content-Type"].startswith("text/html") and b"Traceback" not in response.content


@pytest.mark.asyncio
async def test_a_serving_process_judges_persistence_from_the_status_runtick_publishes(
    write_locked, probe_every_poll
):
    layer = get_channel_layer()
    await layer.flush()
    hub = stream_hub()
    await hub.start()
    ticking = Ticking()
    stream = StreamPublisher(
        layer, epoch="e-health", applied=list, rate=10.0, status=lambda: {"persistence": ticking.writer.status()}
    )
    ticking.sinks.append(stream)
    stream.start()
    api = APIClient()
    try:
        with write_locked("consciousness_tick", "consciousness_enginesnapshot", timeout=LOCK_TIMEOUT_S):
            await ticking.ticks(1)
            await ticking.flushed()  # failed
            await ticking.ticks(3)
            for _ in range(100):  # the next status report carries the failure
                reported = (hub.engine_status or {}).get("persistence", {})
                if reported.get("consecutive_failures") and hub.latest_tick is not None:
                    break
                await asyncio.sleep(0.05)
            response = await sync(api.get)("/health/")
        body = response.json()
        assert response.status_code == 503 and "persistence" in body["failing"], body
        assert body["persistence"]["source"] == "stream" and body["persistence"]["status"] == "failing"
        assert body["persistence"]["backlog_ticks"] >= 4 and "lock" in body["persistence"]["last_error"]
        assert body["engine"]["status"] == "ticking" and body["engine"]["source"] == "stream"
        assert body["channel_layer"]["status"] == "ok" and body["channel_layer"]["joined"] is True

        await ticking.ticks(1)
        await ticking.flushed()  # written, all five
        for _ in range(100):
            if not hub.engine_status["persistence"]["backlog_ticks"]:
                break
            await ticking.ticks(1)
            await ticking.flushed()
            await asyncio.sleep(0.05)
        response = await sync(api.get)("/health/")
        assert response.status_code == 200, response.json()
        assert response.json()["persistence"]["source"] == "stream"
    finally:
        await stream.close()
        await ticking.writer.close()
        await hub.stop()
        await layer.flush()


@pytest.mark.asyncio
async def test_a_serving_process_that_hears_no_ticks_while_the_history_grows_names_the_channel_layer():
    layer = get_channel_layer()
    await layer.flush()
    hub = stream_hub()
    await hub.start()
    try:
        await sync(history_make)(10)  # the engine ticks (its history says so), but nothing reaches this hub
        body = (await sync(APIClient().get)("/health/")).json()
        assert body["failing"] == ["channel_layer"] and body["channel_layer"]["status"] == "no ticks", body
        assert body["engine"]["status"] == "ticking" and body["engine"]["source"] == "database"
        assert body["persistence"]["status"] == "ok" and body["persistence"]["source"] == "database"
    finally:
        await hub.stop()
        await layer.flush()


def test_the_health_schema_documents_every_section(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    health = schema["components"]["schemas"]["Health"]["properties"]
    assert {"status", "failing", "engine", "database", "persistence", "channel_layer"} == set(health)
    responses = schema["paths"]["/health/"]["get"]["responses"]
    assert {"200", "503"} <= set(responses)
    assert "503" in schema["paths"]["/api/runs/"]["post"]["responses"]
