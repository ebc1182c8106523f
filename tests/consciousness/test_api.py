"""The REST API and the admin, through APIClient and Django's test client."""

import time
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from consciousness import services
from consciousness.models import Tick
from tests.factories import history_make

pytestmark = [pytest.mark.django_db, pytest.mark.both_shapes]

TICK_KEYS = {
    "tick_number", "timestamp", "scup", "entropy", "mood", "neural_activity",
    "consciousness_unity", "memory_pressure", "active_processes", "subsystems",
}


@pytest.fixture
def api():
    return APIClient()


def test_state_is_the_newest_tick_in_the_tick_data_format(api):
    ticks = history_make(30)
    response = api.get("/api/state/")
    assert response.status_code == 200
    assert response.json() == ticks[-1]
    assert set(response.json()) == TICK_KEYS


def test_state_without_any_tick_is_a_json_503(api):
    response = api.get("/api/state/")
    assert response.status_code == 503
    assert "error" in response.json()


def test_history_is_newest_first_and_paginated_by_cursor(api):
    ticks = history_make(250)
    first = api.get("/api/ticks/").json()
    assert [t["tick_number"] for t in first["results"]] == list(range(250, 150, -1))
    assert first["results"][0] == ticks[-1]
    second = api.get(first["next"]).json()
    assert [t["tick_number"] for t in second["results"]] == list(range(150, 50, -1))
    small = api.get("/api/ticks/?page_size=10").json()
    assert len(small["results"]) == 10


def test_history_filters_by_tick_number_range_and_mood(api):
    ticks = history_make(120)
    page = api.get("/api/ticks/?since=40&until=45").json()
    assert [t["tick_number"] for t in page["results"]] == [45, 44, 43, 42, 41, 40]
    mood = ticks[50]["mood"]
    moods = {t["mood"] for t in api.get(f"/api/ticks/?mood={mood}&page_size=1000").json()["results"]}
    assert moods == {mood}


@pytest.mark.parametrize("query", ["since=abc", "until=1.5.2", "page_size=many"])
def test_bad_filters_answer_a_json_400_or_are_ignored_never_500(api, query):
    history_make(5)
    response = api.get(f"/api/ticks/?{query}")
    assert response.status_code in (200, 400)
    assert response["Content-Type"].startswith("application/json")
    if response.status_code == 400:
        assert "error" in response.json()


def test_unknown_urls_get_a_json_404(api):
    response = api.get("/api/nothing-here/")
    assert response.status_code == 404
    assert response.json()["error"] == "not found"


def test_health_is_200_while_ticks_are_fresh(api):
    history_make(10, start_time=time.time() - 0.5, period=0.05)
    response = api.get("/health/")
    assert response.status_code == 200
    body = response.json()
    assert body["engine"]["status"] == "ticking" and body["database"]["status"] == "ok"
    assert body["engine"]["last_tick_age_s"] < 2


def test_health_is_503_naming_the_engine_when_ticks_are_stale(api):
    history_make(10, start_time=time.time() - 600)
    response = api.get("/health/")
    assert response.status_code == 503
    assert response.json()["failing"] == ["engine"]
    assert response.json()["engine"]["status"] == "stale"


def test_health_is_503_before_the_first_tick(api):
    response = api.get("/health/")
    assert response.status_code == 503 and response.json()["engine"]["status"] == "no ticks yet"


def test_history_prune_removes_only_ticks_older_than_the_horizon():
    history_make(20, start_time=time.time() - 7200, period=1.0)
    assert services.history_prune(retention=timedelta(hours=1)) == 20
    history_make(5)
    assert services.history_prune(retention=timedelta(hours=1)) == 0
    assert Tick.objects.count() == 5


def test_admin_lists_the_history_read_only(client):
    history_make(30)
    user = get_user_model().objects.create_superuser("admin", "admin@example.com", "pw")
    client.force_login(user)
    listing = client.get("/admin/consciousness/tick/")
    assert listing.status_code == 200
    assert b"tick_number" in listing.content or b"Tick number" in listing.content
    assert client.get("/admin/consciousness/tick/?mood=curious").status_code == 200
    assert client.get("/admin/consciousness/tick/?q=12").status_code == 200
    assert client.get("/admin/consciousness/tick/add/").status_code == 403
    detail = client.get("/admin/consciousness/tick/30/change/")
    assert detail.status_code == 200 and b"Save" not in detail.content


def test_the_admin_lists_the_journal_read_only(client):
    from django.utils import timezone

    now = timezone.now()
    row = services.control_record(
        command=uuid.uuid4(), action="step", ticks=4, rate=None, outcome="applied", detail="stepping ticks 8..11",
        tick_number=7, paused=True, tick_rate=10.0, epoch=uuid.uuid4(), requested_by_id=None, label="ada",
        requested_at=now, applied_at=now,
    )
    client.force_login(get_user_model().objects.create_superuser("admin", "a@example.com", "pw"))
    listing = client.get("/admin/consciousness/enginecontrol/")
    assert listing.status_code == 200 and b"stepping" not in listing.content and b"ada" in listing.content
    assert client.get("/admin/consciousness/enginecontrol/?action=step&q=7").status_code == 200
    assert client.get("/admin/consciousness/enginecontrol/add/").status_code == 403
    detail = client.get(f"/admin/consciousness/enginecontrol/{row.pk}/change/")
    assert detail.status_code == 200 and b"stepping ticks 8..11" in detail.content and b"Save" not in detail.content
