"""The root in headless Chromium: a person who opens the site logs in and lands where their role works."""

import re

import pytest

from tests.browser import browser, login, page  # noqa: F401 (browser, page: fixtures)
from tests.metrics.test_kpi_browser import set_password

from playwright.sync_api import expect  # after tests.browser: it skips the module when playwright is missing

pytestmark = pytest.mark.django_db
PASSWORD = "home-browser-pass-2025"


@pytest.mark.parametrize(("role", "lands_on"), [("agent", r"/agent/$"), ("manager", r"/admin/$")])
def test_opening_the_site_and_logging_in_lands_each_role_on_its_page(page, request, role, lands_on):
    set_password(request.getfixturevalue(role), PASSWORD)
    # Given a person who opens the site's address
    page.goto("/")
    # Then they are asked to log in, and after logging in they are where their role works
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/$"))
    login(page, role, PASSWORD)
    expect(page).to_have_url(re.compile(lands_on))
    # And the root takes them there again later
    page.goto("/")
    expect(page).to_have_url(re.compile(lands_on))
