"""The cadence screens in headless Chromium: the results per step, a preview as a chosen customer, the
settings that follow the trigger on a new cadence, and a cadence page no wider than a desktop or a phone, in
English and in Arabic (right to left)."""

import datetime as dt
from urllib.parse import urlsplit

import pytest
from django.utils import timezone

from tests.browser import assert_png, browser, login, page, screenshot  # noqa: F401 (browser, page: fixtures)
from tests.factories import CadenceFactory, CadenceStepFactory, CustomerFactory, LifecycleEventFactory, TouchpointFactory

from playwright.sync_api import expect  # after tests.browser: it skips the module when playwright is missing

pytestmark = pytest.mark.django_db
PASSWORD = "correct-horse-battery-staple"  # tests.factories.UserFactory's

# Elements whose box reaches beyond the viewport on either side (right to left included), outermost first.
OVERFLOW_JS = """() => {
  const w = document.documentElement.clientWidth, out = [];
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || (r.right <= w + 1 && r.left >= -1)) continue;
    out.push(`${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}.${String(el.className).trim().split(/\\s+/).join('.')}`
             + ` (${Math.round(r.left)}..${Math.round(r.right)})`);
    if (out.length >= 5) break;
  }
  return {scroll: document.documentElement.scrollWidth, width: w, offenders: out};
}"""


@pytest.fixture
def winback():
    """A three-step win-back cadence with some history on its first step."""
    cadence = CadenceFactory(name="Win-back, tested", trigger="lapsed", marketing=True)
    steps = [CadenceStepFactory(cadence=cadence, position=n, offset_days=7 * (n - 1), template=template)
             for n, template in enumerate(("winback_miss_you", "winback_offer", "winback_last_chance"), start=1)]
    sent_at = timezone.now() - dt.timedelta(days=20)
    customers = [CustomerFactory() for _ in range(4)]
    for customer in customers[:2]:
        TouchpointFactory(step=steps[0], customer=customer, status="sent", sent_at=sent_at, due_at=sent_at, anchor_at=sent_at)
    for customer in customers[2:]:
        TouchpointFactory(step=steps[0], customer=customer, status="suppressed", reason="frequency_cap", due_at=sent_at,
                          anchor_at=sent_at)
    LifecycleEventFactory(customer=customers[0], kind="reactivated", occurred_at=sent_at + dt.timedelta(days=4))
    return cadence, steps


def _log_in(page, url: str, locale: str = "en") -> None:
    page.goto(url)
    page.context.add_cookies([{"name": "django_language", "value": locale, "domain": urlsplit(page.url).hostname, "path": "/"}])
    login(page, "manager", PASSWORD)


@pytest.mark.parametrize(("width", "locale"), [(1440, "en"), (390, "en"), (1440, "ar"), (390, "ar")])
def test_the_cadence_page_shows_the_results_and_fits_the_screen(page, manager, winback, width, locale):
    cadence, steps = winback
    page.set_viewport_size({"width": width, "height": 900})
    # Given a manager on the cadence's page
    _log_in(page, f"/admin/touchpoints/cadence/{cadence.pk}/change/", locale)
    expect(page.locator("html")).to_have_attribute("dir", "rtl" if locale == "ar" else "ltr")
    # Then the results show per step: 2 sent, 2 suppressed by the cap, 1 of 2 customers reactivated
    row = page.locator(f"#results-step-{steps[0].pk}")
    expect(row.locator(".results-sent")).to_have_text("2")
    expect(row.locator('[data-reason="frequency_cap"] .results-reason-count')).to_have_text("2")
    expect(row.locator(".results-reactivated")).to_contain_text("1")
    expect(row.locator(".results-touched")).to_have_text("2")
    expect(page.locator("#cadence-results-table tbody tr")).to_have_count(3)
    # And a test-send button per step
    expect(page.locator(".results-test-send button")).to_have_count(3)
    # And nothing is wider than the screen: not the steps, not the results (a screenshot to look at, in
    # var/screenshots/)
    assert_png(screenshot(page, f"cadence-{width}-{locale}"))
    found = page.evaluate(OVERFLOW_JS)
    assert found["scroll"] <= found["width"] + 1 and not found["offenders"], found


def test_a_manager_previews_a_step_as_a_chosen_customer(page, manager, winback):
    _cadence, steps = winback
    customer = CustomerFactory(name="ليلى حسن", locale="ar")
    # Given the preview of the "we miss you" step, with the sample customer in English
    _log_in(page, f"/admin/touchpoints/cadence/step/{steps[0].pk}/preview/?locale=en")
    expect(page.locator("#preview-subject")).to_contain_text("Sample")
    # When the manager chooses the customer by email address
    page.locator("#preview-customer").fill(customer.email)
    with page.expect_navigation():
        page.locator("#customer-chooser button").click()
    # Then the message is hers: Arabic, her first name, in the text and in the HTML frame
    expect(page.locator("#preview-who")).to_contain_text(f"#{customer.pk}")
    expect(page.locator("#preview-subject")).to_have_text("اشتقنا إليك يا ليلى")
    expect(page.frame_locator("#preview-html").locator("html")).to_have_attribute("dir", "rtl")
    expect(page.frame_locator("#preview-html").locator("body")).to_contain_text("ليلى")
    # And nothing on the page is wider than a phone
    page.set_viewport_size({"width": 390, "height": 900})
    found = page.evaluate(OVERFLOW_JS)
    assert found["scroll"] <= found["width"] + 1 and not found["offenders"], found


def test_the_settings_follow_the_trigger_on_a_new_cadence(page, manager):
    _log_in(page, "/admin/touchpoints/cadence/add/")
    milestones, interval = page.locator(".form-row.field-milestones"), page.locator(".form-row.field-interval_days")
    # No trigger yet: no trigger settings
    expect(milestones).to_be_hidden()
    expect(interval).to_be_hidden()
    expect(page.locator("fieldset.cadence-trigger-settings")).to_be_hidden()
    # A milestone cadence asks for its order numbers only
    page.locator("#id_trigger").select_option("milestone")
    expect(milestones).to_be_visible()
    expect(interval).to_be_hidden()
    # A check-in, for its interval only
    page.locator("#id_trigger").select_option("checkin")
    expect(interval).to_be_visible()
    expect(milestones).to_be_hidden()
    # An order cadence reads neither
    page.locator("#id_trigger").select_option("order")
    expect(page.locator("fieldset.cadence-trigger-settings")).to_be_hidden()
    # And the page fits a phone
    page.set_viewport_size({"width": 390, "height": 900})
    found = page.evaluate(OVERFLOW_JS)
    assert found["scroll"] <= found["width"] + 1 and not found["offenders"], found
