"""The language chooser in headless Chromium: an agent picks Persian in the header, a manager Arabic in the
admin's user links; the page turns right to left, stays in that language, and fits a phone and a desktop."""

import re

import pytest

from tests.browser import browser, login, page, screenshot  # noqa: F401 (browser, page: fixtures)
from tests.metrics.test_kpi_browser import set_password

from playwright.sync_api import expect  # after tests.browser: it skips the module when playwright is missing

pytestmark = pytest.mark.django_db
PASSWORD = "language-browser-pass-2025"


def fits(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")


@pytest.mark.parametrize(("role", "start", "language", "direction"),
                         [("agent", "/agent/", "fa", "rtl"), ("manager", "/admin/", "ar", "rtl")])
def test_choosing_a_language_turns_the_page_and_it_stays(page, request, role, start, language, direction):
    set_password(request.getfixturevalue(role), PASSWORD)
    # Given a person logged in, on their page
    page.goto(start)
    login(page, role, PASSWORD)
    expect(page).to_have_url(re.compile(f"{start}$"))
    # When they choose a language in the chooser
    page.locator(".language-chooser select").select_option(language)
    with page.expect_navigation():
        page.locator(".language-chooser button").click()
    # Then they are back on the same page, in that language and its direction
    expect(page).to_have_url(re.compile(f"{start}$"))
    expect(page.locator("html")).to_have_attribute("lang", language)
    expect(page.locator("html")).to_have_attribute("dir", direction)
    # And it stays on their next page, which fits a desktop and a phone
    page.goto(start)
    expect(page.locator("html")).to_have_attribute("lang", language)
    for width, height in ((1440, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        assert fits(page), f"horizontal overflow at {width} px"
    screenshot(page, f"language-{role}-{language}-390")
