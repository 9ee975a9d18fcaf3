"""``/admin/docs`` in a real browser (Debian's chromium, driven by Playwright) with every request off this machine
refused, as on a machine without internet: Swagger UI must still render the admin API."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from interlock.emulator import EmulatorServer
from tests.support.gateway import model, running_gateway

CHROMIUM = "/usr/bin/chromium"  # Debian's: Playwright's own browser download cannot work here
COSMETIC = ("https://cdn.redoc.ly/redoc/logo-mini.svg", "https://validator.swagger.io/")

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")


@pytest.fixture(scope="module")
def gateway_url(tmp_path_factory) -> Iterator[str]:
    db = tmp_path_factory.mktemp("docs") / "gw.db"
    with contextlib.ExitStack() as stack:
        worker = stack.enter_context(EmulatorServer(port=0, served_model_names=["m"]))
        url, _ = stack.enter_context(
            running_gateway(models=[model("m", worker.url)], database={"url": f"sqlite:///{db}"})
        )
        yield url


@pytest.mark.parametrize(
    ("page_path", "selector"), [("/admin/docs", ".opblock"), ("/admin/redoc", "[data-section-id]")]
)
def test_when_the_admin_docs_open_without_internet_then_every_operation_is_shown(gateway_url, page_path, selector):
    from playwright.sync_api import sync_playwright

    refused: list[str] = []

    def offline(route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort("internetdisconnected")

    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            page = browser.new_page()
            page.route("**/*", offline)
            page.goto(gateway_url + page_path)
            page.wait_for_selector(selector, timeout=30_000)
            assert page.locator(selector).count() >= 10  # keys, teams and models operations
            assert "Interlock admin API" in page.content()
        finally:
            browser.close()
    # What may still be asked of the internet is cosmetic: ReDoc's "powered by" logo, Swagger's validator badge.
    assert [u for u in refused if not u.startswith(COSMETIC)] == []
