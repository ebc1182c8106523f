"""The dashboard at / in a real headless browser (Debian's chromium via Playwright) against a real runtick."""

from __future__ import annotations

import os
import time

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.support import ROOT, Site, free_port, launch_chromium, wait_http


class Dawn:
    def __init__(self, site: Site) -> None:
        self.site, self.port, self.process = site, free_port(), None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> None:
        self.process = self.site.spawn("runtick", "--rate", "10", "--port", str(self.port))
        wait_http(f"{self.url}health/")

    def stop(self) -> None:
        self.site.terminate(self.process)


@pytest.fixture(scope="module")
def dawn(tmp_path_factory):
    server = Dawn(Site(tmp_path_factory.mktemp("dashboard")).migrate())
    server.start()
    time.sleep(2.0)  # some history for the charts to be filled from
    yield server
    if server.process.poll() is None:
        server.stop()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, dawn):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.problems = problems
    page.goto(dawn.url)
    page.wait_for_function("window.dawn && window.dawn.client.state === 'open' && window.dawn.client.last !== null")
    yield page
    context.close()


def seen(page: Page) -> list[int]:
    return page.evaluate("window.dawn.client.seen")


def test_page_loads_without_console_errors_and_its_charts_fill_from_history_and_advance(page):
    page.wait_for_function("window.dawn.series.x.length > 0")
    first = page.evaluate("window.dawn.series.x.length")
    live = len(seen(page))
    assert first > live + 5  # the charts hold history from before the page connected
    page.wait_for_timeout(1500)
    later = page.evaluate("window.dawn.series.x")
    assert len(later) >= first + 8 and later == sorted(later)
    assert page.locator(".chart canvas").count() == 4
    expect(page.locator("#conn")).to_have_text("open")
    assert page.locator("#mood").inner_text() not in ("", "–")
    assert page.locator("#subsystems .subsystem").count() == 3
    expect(page.locator("#tick-rate")).to_contain_text("Hz")
    numbers = seen(page)
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    assert page.problems == []


def test_a_stimulus_from_the_page_is_acknowledged_with_its_tick(page):
    page.select_option("#stimulus-form select[name=kind]", "chaos")
    page.click("#stimulus-form button")
    expect(page.locator("#stimulus-status")).to_contain_text("applied at tick", timeout=10_000)
    tick = int(page.locator("#stimulus-status").inner_text().rsplit(" ", 1)[-1])
    assert tick > 0
    assert page.problems == []


def test_the_engine_is_paused_stepped_and_resumed_from_the_page(page):
    expect(page.locator("#engine-state")).to_have_text("running · 10 Hz")
    page.click("#control-form button[data-action=pause]")
    expect(page.locator("#control-status")).to_contain_text("pause applied after tick", timeout=10_000)
    expect(page.locator("#engine-state")).to_have_text("paused · 10 Hz")
    at = int(page.locator("#control-status").inner_text().rsplit(" ", 1)[-1])
    page.wait_for_timeout(500)
    assert page.evaluate("window.dawn.client.last") == at  # no tick while paused
    page.fill("#control-form input[name=ticks]", "3")
    page.click("#control-form button[data-action=step]")
    page.wait_for_function(f"window.dawn.client.last === {at + 3}", timeout=10_000)
    page.wait_for_timeout(500)
    assert page.evaluate("window.dawn.client.last") == at + 3  # exactly three, then held again
    page.click("#control-form button[data-action=resume]")
    expect(page.locator("#engine-state")).to_have_text("running · 10 Hz")
    page.wait_for_function(f"window.dawn.client.last > {at + 4}", timeout=10_000)
    page.click("#control-form button[data-action=step]")  # running: refused, and the page says why
    expect(page.locator("#control-status")).to_contain_text("pause it before stepping (conflict)")
    assert page.problems == []


def test_a_process_started_from_the_page_shows_its_output_and_picture(page):
    page.wait_for_selector("#scripts details.script")
    script = page.locator("details.script", has=page.locator("summary b", has_text="neural_analyzer"))
    script.locator("summary").click()
    script.locator("input[name=threshold]").fill("0.4")
    script.locator("button[type=submit]").click()
    expect(page.locator("#run-status")).to_contain_text("queued")
    process_id = page.locator("#run-status").inner_text().split()[0]
    run = page.locator(f'#runs li[data-process-id="{process_id}"]')
    expect(run.locator(".badge")).to_have_text("completed", timeout=30_000)
    expect(run.locator(".analysis")).not_to_be_empty()
    picture = run.locator("img.picture")
    expect(picture).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=picture.element_handle())
    assert page.problems == []


def test_the_page_reconnects_after_a_runtick_restart_and_resumes_with_no_gap(page, dawn):
    page.wait_for_function("window.dawn.client.seen.length > 10")
    dawn.stop()
    page.wait_for_function("window.dawn.client.state !== 'open'")
    time.sleep(1.0)
    dawn.start()
    before = len(seen(page))
    page.wait_for_function(f"window.dawn.client.state === 'open' && window.dawn.client.seen.length > {before + 20}",
                           timeout=30_000)
    numbers = seen(page)
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))  # every tick once, across the restart
    assert page.evaluate("window.dawn.client.reconnects") >= 1
    # a refused connection while runtick was down is the browser's, not the page's: nothing else went wrong
    assert [p for p in page.problems if "WebSocket" not in p and "ERR_CONNECTION_REFUSED" not in p] == []


@pytest.mark.skipif(not os.environ.get("DAWN_SCREENSHOT"), reason="make screenshot takes it")
def test_screenshot(page):
    page.wait_for_timeout(4000)
    page.screenshot(path=str(ROOT / os.environ["DAWN_SCREENSHOT"]), full_page=True)
