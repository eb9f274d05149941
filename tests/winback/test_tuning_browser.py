"""The lapse-rule backtest beside the dormancy policy, in headless Chromium at a desktop and a phone width, in
English and in Arabic (right to left): a manager reads it and adopts a rule with one click."""

import re
from urllib.parse import urlsplit

import pytest

from tests.browser import browser, login, page  # noqa: F401 (browser, page: fixtures)
from tests.metrics.test_kpi_browser import set_password
from tests.predictions.test_fitting import cdnow  # noqa: F401 (fixture: CDNOW's sample as our orders)
from tests.winback.test_rule_tuning import END_OF_DATA
from winback.services.policy import policy_current
from winback.services.rule_tuning import lapse_rule_tune

from playwright.sync_api import expect  # after tests.browser: it skips the module when playwright is missing

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("width", "locale"), [(1440, "en"), (390, "en"), (1440, "ar"), (390, "ar")])
def test_a_manager_reads_the_backtest_and_adopts_a_rule(page, manager, cdnow, width, locale):  # noqa: F811
    # Given a backtest of the rules on our orders
    set_password(manager, "tuning-browser-pass-2025")
    tuning = lapse_rule_tune(holdout_days=273, now=END_OF_DATA)
    before = policy_current()
    page.set_viewport_size({"width": width, "height": 900})
    page.goto("/admin/winback/dormancypolicy/")
    # The language a person picks (Django's language cookie), for every page of the site
    page.context.add_cookies([{"name": "django_language", "value": locale, "domain": urlsplit(page.url).hostname, "path": "/"}])
    login(page, "manager", "tuning-browser-pass-2025")
    # Then the page, in the reader's language and direction, shows the table beside the policy versions
    html = page.locator("html")
    expect(html).to_have_attribute("dir", "rtl" if locale == "ar" else "ltr")
    section = page.locator("#rule-tuning")
    expect(section).to_be_visible()
    expect(section.locator("tbody tr")).to_have_count(len(tuning.candidates))
    expect(section.locator("tbody tr").first).to_contain_text(str(before))
    # And the wide table scrolls inside its own box, which fits the screen
    box = section.locator(".tuning-scroll").bounding_box()
    assert box is not None and 0 < box["width"] <= width and box["x"] >= 0, box
    # When the manager clicks Adopt on the 60-day window
    button = section.locator(f'form[action$="/{tuning.pk}/window_60/"] button')
    button.scroll_into_view_if_needed()
    with page.expect_navigation():
        button.click()
    # Then it is the policy, a new version made by them, and the page says so
    policy = policy_current()
    assert (policy.pk != before.pk, policy.rule, policy.default_days, policy.created_by_id) == (True, "window", 60, manager.pk)
    # (the version's number: "v17" in English, "الإصدار 17" in Arabic)
    expect(page.locator(".messagelist .success")).to_contain_text(re.compile(rf"(?<!\d){policy.pk}(?!\d)"))
