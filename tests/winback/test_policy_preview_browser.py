"""The dormancy policy's preview in headless Chromium, at a desktop and a phone width: a manager changes the
policy on its form, presses Preview and reads what saving would do, before anything is saved."""

import pytest
from django.utils import timezone

from tests.browser import assert_png, browser, login, page, screenshot  # noqa: F401 (browser, page: fixtures)
from tests.winback.conftest import BASE, customer_with_orders
from winback.models import DormancyPolicy
from winback.services.lifecycle import lifecycle_scan
from winback.services.policy import POLICY_FIELDS, policy_current
from winback.services.policy_preview import policy_preview

from playwright.sync_api import expect  # after tests.browser: it skips the module when playwright is missing

pytestmark = pytest.mark.django_db
PASSWORD = "correct-horse-battery-staple"  # tests.factories.UserFactory's


def no_horizontal_overflow(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")


@pytest.mark.parametrize("width", [1440, 390])
def test_a_manager_previews_a_policy_change_before_saving_it(page, manager, width):
    # Given customers who last ordered 20, 50 and 100 days ago and one who never did, their lifecycles built
    today = (timezone.now() - BASE).total_seconds() / 86_400
    for days_ago in (20, 50, 100):
        customer_with_orders([today - days_ago])
    customer_with_orders([])
    lifecycle_scan(full=True)
    versions = DormancyPolicy.objects.count()
    page.set_viewport_size({"width": width, "height": 900})
    page.goto("/admin/winback/dormancypolicy/add/")
    login(page, "manager", PASSWORD)
    # The form says what a save does before anything is pressed
    expect(page.locator("#policy-save")).to_contain_text("rebuilds the lifecycle of")
    assert no_horizontal_overflow(page), "the policy form is wider than the screen"
    # When the manager picks one 30-day window for everyone and presses Preview
    page.get_by_label("Rule").select_option("window")
    page.get_by_label("Default days").fill("30")
    with page.expect_navigation():
        page.locator('input[name="_preview"]').click()
    # Then the page shows, for these values, how many customers would be lapsed and at risk, against the policy in use
    preview = page.locator("#policy-preview")
    expect(preview).to_be_visible()
    values = {f: getattr(policy_current(), f) for f in POLICY_FIELDS} | {"rule": "window", "default_days": 30}
    expected = policy_preview(values=values)
    lapsed = preview.locator('tr[data-status="lapsed"] td')
    expect(lapsed.nth(0)).to_have_text(str(expected.current.lapsed))
    expect(lapsed.nth(1)).to_have_text(str(expected.proposed.lapsed))
    expect(preview.locator('tr[data-status="at_risk"] td').nth(1)).to_have_text(str(expected.proposed.at_risk))
    assert expected.proposed.lapsed != expected.current.lapsed  # the comparison shows a change
    # And the form keeps the values, nothing is saved yet, and the page still fits the screen
    expect(page.get_by_label("Default days")).to_have_value("30")
    assert DormancyPolicy.objects.count() == versions
    assert no_horizontal_overflow(page), "the preview is wider than the screen"
    assert_png(screenshot(page, f"policy-preview-{width}"))
