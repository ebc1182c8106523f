"""What an operator meets on a real `runtick` (embedded shape): metrics, static files, logs, docs in a browser."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from email.message import Message

import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.support import ROOT, Site, free_port, launch_chromium, wait_http

ORIGIN = "http://localhost:5173"


def get(url: str, headers: dict | None = None) -> tuple[int, Message, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def scrape(url: str) -> dict[str, dict[tuple, float]]:
    """/metrics parsed by prometheus-client's own parser: sample name -> {labels: value}."""
    status, headers, body = get(url)
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def total(samples: dict, name: str) -> float:
    return sum(samples.get(name, {}).values())


def stylesheet_check(base: str) -> None:
    """The admin's login page links hashed stylesheets that whitenoise serves compressed, cached for good."""
    status, _headers, page = get(f"{base}/admin/login/")
    assert status == 200
    links = re.findall(r'<link rel="stylesheet" href="(/static/admin/css/[^"]+\.css)"', page.decode())
    assert links and all(re.search(r"\.[0-9a-f]{12}\.css$", link) for link in links), links
    status, headers, body = get(f"{base}{links[0]}", {"Accept-Encoding": "gzip"})
    assert status == 200 and headers["Content-Type"].startswith("text/css")
    assert headers.get("Content-Encoding") == "gzip" and body[:2] == b"\x1f\x8b"
    assert "immutable" in headers["Cache-Control"]


@pytest.fixture(scope="module")
def dawn(tmp_path_factory):
    """One embedded DAWN serving on a free port, static files collected, a progress line every second."""
    site = Site(tmp_path_factory.mktemp("operations")).migrate().collectstatic()
    port = free_port()
    process = site.spawn_server("runtick", "manage.py", "runtick", "--port", str(port), "--progress", "1")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/health/")
        yield site, base
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_metrics_parse_and_move_while_ticking(dawn):
    _site, base = dawn
    before = scrape(f"{base}/metrics")
    with connect(f"ws://{base[7:]}/ws", origin=ORIGIN) as ws:
        for _ in range(5):
            ws.recv(timeout=10)
        request = urllib.request.Request(
            f"{base}/api/runs/", data=b'{"script": "chaos_engine.py"}', headers={"Content-Type": "application/json"}
        )
        urllib.request.urlopen(request, timeout=10).close()
        time.sleep(1.5)
        during = scrape(f"{base}/metrics")
    for name in ("dawn_ticks_total", "dawn_tick_lateness_seconds_count", "dawn_engine_step_seconds_count",
                 "dawn_history_flushed_ticks_total", "dawn_history_flush_seconds_count", "dawn_history_flush_rows_sum",
                 "dawn_stream_frames_sent_total"):
        assert total(during, name) > total(before, name), name
    assert total(during, "dawn_stream_clients") == 1
    assert total(during, "dawn_tick_slots_skipped_total") >= 0
    assert any(dict(labels)["script"] == "chaos_engine" for labels in during["dawn_runs"])  # counted in the database
    for name in ("dawn_stimuli_total", "dawn_database_errors_total", "dawn_channel_layer_errors_total",
                 "dawn_stream_evictions_total", "dawn_stream_frames_dropped_total", "dawn_run_duration_seconds_count"):
        assert name in during, name
    assert total(during, "dawn_engine_paused") == 0


def test_admin_stylesheets_are_served_hashed_and_compressed(dawn):
    stylesheet_check(dawn[1])


def test_an_unknown_websocket_path_is_refused_without_a_traceback(dawn):
    site, base = dawn
    with pytest.raises(InvalidStatus) as refused:
        connect(f"ws://{base[7:]}/wsx", origin=ORIGIN, open_timeout=5)
    assert refused.value.response.status_code == 403
    with connect(f"ws://{base[7:]}/ws", origin=ORIGIN) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "connection"  # the server lives on
    assert "Traceback" not in site.log("runtick")


def test_logs_say_each_event_once_and_connections_only_at_debug(dawn):
    site, base = dawn
    assert get(f"{base}/api/no-such-thing/")[0] == 404
    with connect(f"ws://{base[7:]}/ws", origin=ORIGIN) as ws:
        ws.recv(timeout=10)
    time.sleep(1.2)
    log = site.log("runtick")
    assert log.count("Not Found: /api/no-such-thing/") == 1, log
    assert "connection open" not in log and '"WebSocket /ws" [accepted]' not in log
    progress = [line for line in log.splitlines() if "dawn_site.progress" in line]
    assert progress and re.search(r"tick \d+: [\d.]+ ticks/s, \d+ slots skipped, lateness [\d.]+ ms mean, \d+ clients, "
                                  r"\d+ ticks persisted in \d+ flushes", progress[-1]), progress


def test_json_logs_when_asked():
    env = {"DAWN_LOG_FORMAT": "json", "PATH": "/usr/bin:/bin"}
    code = "import logging; logging.getLogger('dawn.test').warning('disk %s', 'full')"
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env={**env, "DAWN_LOG_DIR": "/tmp/dawn-json-logs"},
        capture_output=True, text=True, timeout=60,
    )
    record = json.loads(done.stderr.strip().splitlines()[-1])
    assert record["message"] == "disk full" and record["level"] == "WARNING" and record["logger"] == "dawn.test"


def test_swagger_ui_and_redoc_load_in_a_browser_without_errors_or_outside_requests(dawn):
    playwright = pytest.importorskip("playwright.sync_api")
    _site, base = dawn
    with playwright.sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            for path, ready in (("/api/docs/", ".opblock"), ("/api/redoc/", "[data-section-id]")):
                page = browser.new_page()
                errors, requests = [], []
                page.on("console", lambda message: message.type == "error" and errors.append(message.text))
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.on("request", lambda request: requests.append(request.url))
                page.on("response", lambda response: response.status >= 400 and errors.append(response.url))
                page.goto(f"{base}{path}")
                page.wait_for_selector(ready, timeout=20_000)
                assert not errors, (path, errors)
                outside = [url for url in requests if not url.startswith((base, "data:", "blob:"))]
                assert not outside, (path, outside)
                assert page.locator("text=/api/runs/").count() > 0, path
                page.close()
        finally:
            browser.close()
