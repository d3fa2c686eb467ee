"""Two Chromium pages chat in the demo, as people would (headless, Debian's Chromium)."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.e2e._servers import REPO, ChatServer, chat_environment, serving

pytestmark = pytest.mark.slow

ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Playwright's own timeouts (milliseconds) bound every wait below.
TIMEOUT_MS = 15_000


def _chromium() -> str | None:
    default = Path("/usr/bin/chromium")
    return str(default) if default.exists() else shutil.which("chromium")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = _chromium()
    if executable is None:
        pytest.skip("no Chromium executable (/usr/bin/chromium): apt-get install -y chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, args=CHROMIUM_ARGS, timeout=TIMEOUT_MS
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def daphne(chat_database: Path, log_dir: Path) -> Iterator[ChatServer]:
    with serving("daphne", chat_environment(chat_database), log_dir) as running:
        yield running


def _enter(browser: Browser, server: ChatServer, name: str, room: str) -> Page:
    """Open a page in its own context (its own session) and join ``room`` as ``name``."""
    page = browser.new_context().new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{server.http_url}/")
    page.get_by_label("Display name").fill(name)
    page.get_by_label("Room").fill(room)
    page.get_by_role("button", name="Enter").click()
    page.wait_for_url(server.room_url(room))
    return page


def _say(page: Page, text: str) -> None:
    page.locator("#message").fill(text)
    page.locator("#say button").click()


class TestBrowser:
    def test_two_pages_chat(self, browser: Browser, daphne: ChatServer) -> None:
        room = f"browsers-{uuid.uuid4().hex[:8]}"
        ada = _enter(browser, daphne, "Ada", room)
        grace = _enter(browser, daphne, "Grace", room)
        for page in (ada, grace):
            expect(page.locator("#count")).to_have_text("2")
            expect(page.locator("#names")).to_have_text("Ada, Grace")

        _say(ada, "Hello, Grace!")
        _say(grace, "Hi Ada <b>bold?</b> & co")
        for page in (ada, grace):
            lines = page.locator("#messages li.chat")
            expect(lines).to_have_count(2)
            expect(lines.nth(0)).to_have_text("Ada Hello, Grace!")
            expect(lines.nth(1)).to_have_text("Grace Hi Ada <b>bold?</b> & co")
            # The markup stayed text: no element was made from it.
            expect(page.locator("#messages b")).to_have_count(0)

        ARTIFACTS.mkdir(exist_ok=True)
        ada.screenshot(path=ARTIFACTS / "chat-room.png", full_page=True)

        grace.context.close()
        expect(ada.locator("#count")).to_have_text("1")
        ada.context.close()
