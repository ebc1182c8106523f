"""`manage.py check --deploy` with the production environment the README documents, as a real process."""

from __future__ import annotations

import re
import secrets

import pytest

from tests.support import ROOT, Site

# the README's production environment (Deployment), with example values
PRODUCTION = {
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    "DJANGO_ALLOWED_HOSTS": "dawn.example.org",
    "DJANGO_HTTPS": "1",
    "DJANGO_TRUST_X_FORWARDED_PROTO": "1",
}


def deploy_check(tmp_path, **changes: str | None):
    """check --deploy failing on any warning, in the production environment with `changes` (None unsets)."""
    site = Site(tmp_path)
    for name in [n for n in site.env if n.startswith("DJANGO_") or n == "DAWN_OPEN_WRITES"]:
        del site.env[name]  # nothing of the caller's own environment
    site.env.update(PRODUCTION)
    for name, value in changes.items():
        if value is None:
            site.env.pop(name, None)
        else:
            site.env[name] = value
    return site.manage("check", "--deploy", "--fail-level", "WARNING", check=False)


def test_the_documented_production_environment_passes_check_deploy(tmp_path):
    deployment = re.search(r"^## Deployment\n(.*?)^## ", (ROOT / "README.md").read_text(), re.S | re.M).group(1)
    assert all(f"`{name}`" in deployment for name in PRODUCTION), "the README's Deployment table names each"
    completed = deploy_check(tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert "no issues" in completed.stdout


@pytest.mark.parametrize(
    "changes, warnings",
    [
        ({"DJANGO_SECRET_KEY": None}, ["security.W009"]),  # the local development key
        ({"DJANGO_HTTPS": None}, ["security.W004", "security.W008", "security.W012", "security.W016"]),
        ({"DJANGO_DEBUG": "1"}, ["security.W018"]),
        ({"DJANGO_HSTS_PRELOAD": "0"}, ["security.W021"]),
    ],
)
def test_check_deploy_fails_without_each_protection(tmp_path, changes, warnings):
    completed = deploy_check(tmp_path, **changes)
    assert completed.returncode != 0
    assert all(code in completed.stderr for code in warnings), completed.stderr


def test_a_bad_hsts_value_is_named_without_a_traceback(tmp_path):
    completed = deploy_check(tmp_path, DJANGO_HSTS_SECONDS="a year")
    assert completed.returncode == 2
    assert completed.stderr.strip() == "error: DJANGO_HSTS_SECONDS must be a whole number of seconds, not 'a year'"


@pytest.mark.django_db
def test_https_only_redirects_plain_http_but_not_health_or_metrics(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    redirected = client.get("/api/processes/")
    assert redirected.status_code == 301 and redirected["Location"] == "https://testserver/api/processes/"
    assert client.get("/api/processes/", HTTP_X_FORWARDED_PROTO="https").status_code == 200
    assert client.get("/metrics").status_code == 200
    assert client.get("/health/").status_code in (200, 503)  # answered (no tick here), not redirected
