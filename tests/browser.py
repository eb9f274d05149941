"""Shared pieces for browser tests: Debian's headless Chromium driven by Playwright against the live server.

Use it from a test module by importing the fixtures::

    from tests.browser import browser, page  # noqa: F401 (pytest fixtures)

``page`` is a fresh browser context and tab per test (its own cookies), with ``base_url`` set to
pytest-django's ``live_server``, so ``page.goto("/agent/")`` works. ``live_server`` makes the test
use ``transactional_db``: the server thread and the test see each other's committed rows.

Playwright cannot download its own browsers here; the tests use /usr/bin/chromium
(``apt-get install chromium``; .ci/run installs it). Without it the tests skip with that reason,
except on CI (CI=true), where they fail.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ON_CI

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -r requirements.txt)")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    # Without these chromium keeps calling out to Google's services, which fails on a closed network.
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 900}
TIMEOUT_MS = 10_000


@pytest.fixture(scope="module")
def browser() -> Iterator["sync_api.Browser"]:
    """One headless Chromium per test module (starting it is the slow part).

    Not per session: while Playwright's sync API is started, an asyncio loop counts as running in this
    thread, which would leak into every later test (Django's ORM refuses to run, asyncio.run() fails).
    """
    if not CHROMIUM.exists():
        message = f"chromium not installed at {CHROMIUM} (apt-get install chromium): browser tests cannot run"
        if ON_CI:
            pytest.fail(message + "; on CI they must run.", pytrace=False)
        pytest.skip(message)
    with pytest.MonkeyPatch.context() as mp:
        # That loop makes Django's ORM (in the test and in database set-up and flush) believe it runs in
        # async code; these tests are plain synchronous code, so tell Django so while the browser lives.
        mp.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        playwright = sync_api.sync_playwright().start()
        try:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=30_000)
            try:
                yield browser
            finally:
                browser.close()
        finally:
            playwright.stop()


@pytest.fixture
def page(browser, live_server) -> Iterator["sync_api.Page"]:
    """A new tab in its own context (no cookies shared between tests), pointed at the live server."""
    context = browser.new_context(base_url=live_server.url, viewport=VIEWPORT, locale="en-GB")
    context.set_default_timeout(TIMEOUT_MS)
    # No favicon in base.html: answer the browser's automatic request instead of logging a 404 each time.
    context.route("**/favicon.ico", lambda route: route.fulfill(status=204))
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def login(page: "sync_api.Page", username: str, password: str) -> None:
    """Log in through the login page as a person would: type, then press Enter."""
    page.get_by_label("Username").press_sequentially(username)
    page.get_by_label("Password").press_sequentially(password)
    with page.expect_navigation():
        page.get_by_label("Password").press("Enter")


def screenshot(page: "sync_api.Page", name: str) -> Path:
    """Save a full-page PNG under VAR_DIR/screenshots and return its path."""
    from django.conf import settings

    directory = Path(settings.VAR_DIR) / "screenshots"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert len(data) > 1000 and data.startswith(b"\x89PNG\r\n\x1a\n"), f"{path} is not a non-empty PNG"
