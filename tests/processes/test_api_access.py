"""Who may start and cancel runs over REST, and how much: permissions, ownership, bounds and throttles."""

import pytest
from django.contrib.auth.models import Permission, User
from django.core.cache import cache
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from processes.models import ProcessRun

pytestmark = [pytest.mark.django_db, pytest.mark.both_shapes]


@pytest.fixture(autouse=True)
def _fresh_throttles():
    cache.clear()
    yield
    cache.clear()


def token_client(name: str, *perms: str) -> tuple[APIClient, User]:
    user = User.objects.create_user(name, password="pw")
    for perm in perms:
        user.user_permissions.add(Permission.objects.get(codename=perm))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client, user


def post_run(client, **extra):
    return client.post("/api/runs/", {"script": "chaos_engine"}, format="json", **extra)


def test_reads_are_open_and_writes_need_a_user_with_the_permission(settings):
    settings.DAWN_OPEN_WRITES = False
    anonymous = APIClient()
    assert anonymous.get("/api/runs/").status_code == 200
    refused = post_run(anonymous)
    assert refused.status_code in (401, 403) and "error" in refused.json()
    without, _ = token_client("bob")
    assert post_run(without).status_code == 403
    allowed, ada = token_client("ada", "add_processrun")
    accepted = post_run(allowed)
    assert accepted.status_code == 202
    assert ProcessRun.objects.get(pk=accepted.json()["id"]).requested_by == ada
    assert ProcessRun.objects.count() == 1


def test_open_writes_serve_loopback_json_but_never_a_remote_or_cross_site_post(settings):
    settings.DAWN_OPEN_WRITES = True
    local = APIClient()
    assert post_run(local).status_code == 202
    assert post_run(local, REMOTE_ADDR="203.0.113.7").status_code in (401, 403)
    cross_site = local.post("/api/runs/", "script=chaos_engine", content_type="application/x-www-form-urlencoded",
                            HTTP_ORIGIN="https://evil.example")
    assert cross_site.status_code in (401, 403)
    assert post_run(local, HTTP_ORIGIN="https://evil.example").status_code in (401, 403)
    assert ProcessRun.objects.count() == 1


def test_a_user_cancels_only_runs_they_may_manage(settings):
    settings.DAWN_OPEN_WRITES = False
    ada, _ = token_client("ada", "add_processrun")
    bob, _ = token_client("bob", "add_processrun")
    boss, _ = token_client("boss", "add_processrun", "cancel_any_run")
    run = post_run(ada).json()["id"]
    assert bob.post(f"/api/runs/{run}/cancel/", {}, format="json").status_code == 403
    assert ProcessRun.objects.get(pk=run).status == "queued"
    assert ada.post(f"/api/runs/{run}/cancel/", {}, format="json").status_code == 202
    other = post_run(ada).json()["id"]
    assert boss.post(f"/api/runs/{other}/cancel/", {}, format="json").status_code == 202


def test_queued_runs_are_bounded_per_user_and_overall_with_retry_after(settings):
    settings.DAWN_OPEN_WRITES = False
    settings.DAWN_CONFIG = {
        **settings.DAWN_CONFIG,
        "processes": {**settings.DAWN_CONFIG["processes"], "max_queued_per_user": 2, "max_queued": 3},
    }
    ada, _ = token_client("ada", "add_processrun")
    bob, _ = token_client("bob", "add_processrun")
    assert [post_run(ada).status_code for _ in range(3)] == [202, 202, 429]
    busy = post_run(ada)
    assert busy.status_code == 429 and int(busy["Retry-After"]) > 0 and "waiting" in busy.json()["error"]
    assert [post_run(bob).status_code for _ in range(2)] == [202, 429]  # everyone's bound: 3
    assert ProcessRun.objects.filter(status="queued").count() == 3


def test_writes_are_throttled_per_user_with_retry_after(settings, monkeypatch):
    settings.DAWN_OPEN_WRITES = False
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "writes_user": "3/minute"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    from rest_framework.throttling import SimpleRateThrottle

    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", rates)  # DRF reads the rates once, at import
    ada, _ = token_client("ada", "add_processrun")
    codes = [post_run(ada).status_code for _ in range(4)]
    assert codes == [202, 202, 202, 429]
    throttled = post_run(ada)
    assert throttled.status_code == 429 and int(throttled["Retry-After"]) > 0
    assert ada.get("/api/runs/").status_code == 200  # reads are never throttled


def test_finished_runs_older_than_the_retention_are_pruned_and_the_rest_kept():
    from datetime import timedelta

    from django.utils import timezone

    from processes import services

    old = timezone.now() - timedelta(days=30)
    ProcessRun.objects.create(script="chaos_engine", process_id="a", status="completed", end_time=old)
    ProcessRun.objects.create(script="chaos_engine", process_id="b", status="completed", end_time=timezone.now())
    ProcessRun.objects.create(script="chaos_engine", process_id="c", status="queued")
    assert services.runs_prune(retention=timedelta(days=7)) == 1
    assert sorted(ProcessRun.objects.values_list("process_id", flat=True)) == ["b", "c"]
