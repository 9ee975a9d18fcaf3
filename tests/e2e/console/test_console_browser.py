"""The ops console in a real browser (Debian's chromium, driven by Playwright): what a person would see."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from console import STATIC_DIR
from interlock.emulator import EmulatorServer
from tests.support.gateway import model, running_gateway
from tests.support.polling import eventually

CHROMIUM = "/usr/bin/chromium"  # Debian's: Playwright's own browser download cannot work here
ADMIN = "console-admin-token"
#: The README's screenshot: rewritten only with INTERLOCK_UPDATE_SCREENSHOTS=1 (a test run must not dirty the tree).
SCREENSHOT = Path(__file__).resolve().parents[3] / "docs" / "console.png"

pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (scripts/setup.sh)"),
    pytest.mark.skipif(
        not (STATIC_DIR / "vendor" / "uPlot.iife.min.js").exists(),
        reason="uPlot is not installed in console/static/vendor (run scripts/setup.sh)",
    ),
]


@pytest.fixture(scope="module")
def console(tmp_path_factory) -> Iterator[tuple[str, list[str]]]:
    """A gateway with the trace store on, in front of an emulated worker, that has served five requests."""
    db = tmp_path_factory.mktemp("console") / "console.db"
    with contextlib.ExitStack() as stack:
        worker = stack.enter_context(EmulatorServer(port=0, served_model_names=["m"]))
        url, _ = stack.enter_context(
            running_gateway(
                models=[model("m", worker.url)],
                database={"url": f"sqlite:///{db}", "flush_interval": 0.1},
                access={"admin_tokens": {ADMIN: "admin"}},
                trace_store={"enabled": True, "keep_ratio": 1.0},
            )
        )
        c = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
        ids = []
        for i in range(5):
            r = c.chat.completions.with_raw_response.create(
                model="m", messages=[{"role": "user", "content": f"hello {i}"}], max_tokens=4
            )
            ids.append(r.headers["x-request-id"])
        headers = {"authorization": f"Bearer {ADMIN}"}
        eventually(lambda: httpx.get(url + "/admin/console/summary", headers=headers).json()["requests"] >= 5)
        yield url, ids


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=args)
        yield b
        b.close()


@pytest.fixture
def page(browser, console):
    url, _ = console
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url + "/ui/")
    page.fill("#token", ADMIN)
    page.click("#login-form button")
    page.wait_for_selector("#main:not([hidden])")
    yield page
    page.close()


def test_when_the_console_is_opened_without_a_token_then_it_asks_for_one(browser, console):
    page = browser.new_page()
    page.goto(console[0] + "/ui")
    assert page.is_visible("#login") and not page.is_visible("#main")
    page.fill("#token", "wrong")
    page.click("#login-form button")
    page.wait_for_selector("text=Unknown token.")
    page.close()


def test_when_requests_were_just_sent_then_the_traffic_chart_has_their_data_points(page, tmp_path):
    page.wait_for_selector(".chart[data-panel=traffic] canvas")
    sent = page.evaluate("Math.max(...window.interlockConsole.charts.traffic.series.requests.map(v => v || 0))")
    total = page.evaluate("window.interlockConsole.charts.traffic.series.requests.reduce((a, v) => a + (v || 0), 0)")
    assert total == 5 and sent >= 1
    assert page.inner_text("#tiles").count("5") >= 1
    page.wait_for_selector(".chart[data-panel=latency] canvas")
    update = os.environ.get("INTERLOCK_UPDATE_SCREENSHOTS") == "1"
    before = SCREENSHOT.stat().st_mtime_ns if SCREENSHOT.exists() else None
    shot = SCREENSHOT if update else tmp_path / "console.png"
    shot.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(shot), full_page=False)
    assert shot.stat().st_size > 0
    if not update:
        assert (SCREENSHOT.stat().st_mtime_ns if SCREENSHOT.exists() else None) == before  # the tree stays clean


def test_when_a_request_is_opened_then_its_trace_shows_each_step_as_a_span(page, console):
    page.goto(console[0] + "/ui/#requests")
    page.wait_for_selector(f"#requests-table tr[data-id='{console[1][0]}']")
    page.click(f"#requests-table tr[data-id='{console[1][0]}']")
    page.wait_for_selector(".span-row[data-span='interlock.step authenticate']")
    spans = page.eval_on_selector_all(".span-row", "rows => rows.map(r => r.dataset.span)")
    assert spans.count("chat m") == 2 and "interlock.step resolve_model" in spans


def test_when_a_key_is_created_in_the_form_then_it_can_call_a_model(page, console):
    page.goto(console[0] + "/ui/#access")
    page.fill("#key-form input[name=name]", "from-the-console")
    page.fill("#key-form input[name=rpm]", "100")
    page.click("#key-form button")
    page.wait_for_selector("#new-key:not([hidden])")
    secret = page.inner_text("#new-key code")
    page.wait_for_selector("#keys-table td:text-is('from-the-console')")
    c = openai.OpenAI(base_url=console[0] + "/v1", api_key=secret, max_retries=0)
    reply = c.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], max_tokens=2)
    assert reply.choices[0].message.content is not None
    records = httpx.get(
        console[0] + "/admin/console/requests", params={"limit": 1}, headers={"authorization": f"Bearer {ADMIN}"}
    ).json()
    assert records == [] or records[0]["key_id"] is None or records[0]["key_id"].startswith(("key", ""))


def test_when_feedback_is_sent_then_the_feedback_page_lists_it(page, console):
    url, ids = console
    r = httpx.post(url + "/v1/feedback", json={"request_id": ids[1], "thumbs": "down", "comment": "too short"})
    assert r.status_code == 200
    page.goto(url + "/ui/#feedback")
    page.wait_for_selector(f"#feedback-table tr[data-id='{ids[1]}']")
    assert "too short" in page.inner_text(f"#feedback-table tr[data-id='{ids[1]}']")
