"""The API documentation in a real browser with no internet: ``/docs`` and ``/redoc`` render from
assets the server itself serves, and Swagger UI's Authorize (OAuth2 password flow) works.

Drives Debian's Chromium headless through Playwright; every request to a host other than
127.0.0.1 is aborted and recorded, and the tests assert that none was attempted.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

from api.docs import ASSETS_URL
from tests.conftest import on_backends
from tests.e2e.test_walkthrough import PASSWORD, Server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
ADMIN = "admin@example.com"
TIMEOUT_MS = 30_000

pytestmark = on_backends("sqlite")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: install it with `apt-get install -y chromium`"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message} (CI=true makes the browser tests mandatory)")
        pytest.skip(message)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class OfflinePage:
    """A browser page that may reach 127.0.0.1 only; what it tried elsewhere is recorded."""

    def __init__(self, browser: Browser) -> None:
        self.context = browser.new_context()
        self.context.set_default_timeout(TIMEOUT_MS)
        self.page: Page = self.context.new_page()
        self.elsewhere: list[str] = []
        self.local: list[str] = []
        self.context.route("**/*", self._only_localhost)

    def _only_localhost(self, route: Route) -> None:
        url = route.request.url
        if urlsplit(url).hostname == "127.0.0.1":
            self.local.append(urlsplit(url).path)
            route.continue_()
        else:
            self.elsewhere.append(url)
            route.abort()


@pytest.fixture
def offline(browser: Browser) -> Iterator[OfflinePage]:
    page = OfflinePage(browser)
    yield page
    page.context.close()


@pytest.fixture
def server(store_url: str, tmp_path: Path) -> Iterator[Server]:
    running = Server(store_url, tmp_path)
    try:
        setup = httpx.post(f"{running.url}/api/v1/auth/setup",
                           json={"email": ADMIN, "password": PASSWORD}, timeout=10)
        assert setup.status_code == 201, setup.text
        yield running
    finally:
        running.stop()
        print(running.output())


def test_swagger_ui_renders_offline_and_authorize_signs_in(
    offline: OfflinePage, server: Server
) -> None:
    page = offline.page
    page.goto(f"{server.url}/docs")

    list_jobs = page.locator("#operations-jobs-list_jobs_api_v1_jobs_get")
    expect(list_jobs).to_be_visible()
    expect(list_jobs.locator(".opblock-summary-path")).to_have_text("/api/v1/jobs")

    page.locator(".auth-wrapper .btn.authorize").click()
    page.locator("#oauth_username").fill(ADMIN)
    page.locator("#oauth_password").fill(PASSWORD)
    page.locator(".auth-btn-wrapper .btn.modal-btn.auth.authorize").click()
    expect(page.locator(".auth-btn-wrapper .btn.modal-btn.auth").first).to_have_text("Logout")
    page.locator(".auth-btn-wrapper .btn-done").click()

    list_jobs.locator(".opblock-summary").first.click()
    list_jobs.locator(".try-out__btn").click()
    list_jobs.locator(".btn.execute").click()
    status = list_jobs.locator(".live-responses-table .response .response-col_status")
    expect(status).to_have_text("200")
    expect(list_jobs.locator(".live-responses-table .microlight").first).to_contain_text("items")

    assert offline.elsewhere == []
    assert f"{ASSETS_URL}/swagger-ui-bundle.js" in offline.local
    assert f"{ASSETS_URL}/swagger-ui.css" in offline.local
    assert "/api/v1/auth/token" in offline.local


def test_redoc_renders_offline(offline: OfflinePage, server: Server) -> None:
    page = offline.page
    page.goto(f"{server.url}/redoc")

    expect(page.locator("h1").first).to_contain_text("jobledger")
    expect(page.get_by_role("heading", name="List Jobs")).to_be_visible()

    assert offline.elsewhere == []
    assert f"{ASSETS_URL}/redoc.standalone.js" in offline.local
