"""The customer 360 in headless Chromium: a manager opens a customer, reads the summary, filters the timeline
to one type and pages through it with plain links, and nothing on the page is wider than the screen at
1440 and 390 px, left to right and right to left."""

import re
from decimal import Decimal

import pytest

from tests.browser import browser, login, page  # noqa: F401 (browser, page: fixtures)
from tests.core.test_page_widths_browser import OVERFLOW_JS
from tests.crm.test_customer_timeline import ago, one_of_everything
from tests.factories import CustomerFactory, OrderFactory, UserFactory, WinbackCaseFactory

from playwright.sync_api import expect  # after tests.browser: it skips the module when playwright is missing

pytestmark = pytest.mark.django_db
PASSWORD = "correct-horse-battery-staple"  # tests.factories.UserFactory's
WIDTHS = (1440, 390)


@pytest.fixture
def customer():
    # A customer with a long name and a long note (nothing may push the page wider), 61 orders and one of
    # everything else, and an open case an agent holds
    customer = CustomerFactory(name="Maximiliana " + "Wolfeschlegelsteinhausenbergerdorff" * 2, status="lapsed",
                               order_count=61, total_spent=Decimal("3044.00"), last_order_at=ago(240))
    one_of_everything(customer, start=200)
    for i in range(60):
        OrderFactory(customer=customer, ordered_at=ago(300 - i), amount=Decimal("49.90"))
    WinbackCaseFactory(customer=customer, claimed_by=UserFactory(username="holder"))
    return customer


def overflow(page) -> list[str]:
    problems = []
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        found = page.evaluate(OVERFLOW_JS)
        if found["scroll"] > found["width"] + 1:
            problems.append(f"{page.url} at {width} px is {found['scroll']} px wide: {', '.join(found['offenders'])}")
    page.set_viewport_size({"width": WIDTHS[0], "height": 900})
    return problems


def test_a_manager_reads_the_summary_filters_and_pages_the_timeline(page, manager, customer):
    url = f"/admin/crm/customer/{customer.pk}/change/"
    page.set_viewport_size({"width": WIDTHS[0], "height": 900})
    # Given a manager who logs in and opens the customer
    page.goto(f"/accounts/login/?next={url}")
    login(page, "manager", PASSWORD)
    expect(page).to_have_url(re.compile(re.escape(url) + "$"))
    # Then the summary comes first: status, rhythm, value, last order, consent, the open case and its agent
    summary = page.locator("#customer-summary")
    expect(summary).to_be_visible()
    assert summary.bounding_box()["y"] < page.locator("#customer_form").bounding_box()["y"]
    expect(summary.locator('[data-fact="status"] dd')).to_have_text("Lapsed")
    expect(summary.locator('[data-fact="rhythm"] dd')).to_contain_text(re.compile(r"every \d+\.\d days"))
    expect(summary.locator('[data-fact="lifetime-value"] dd')).to_contain_text("€3,044.00")
    expect(summary.locator('[data-fact="email-consent"] dd')).to_contain_text("Unknown (no marketing)")
    expect(summary.locator('[data-fact="open_case"] dd')).to_contain_text("held by holder")
    # And the timeline shows everything, newest first, 50 to a page
    rows = page.locator("#timeline tr.c360-entry")
    expect(rows).to_have_count(50)
    assert len(set(rows.evaluate_all("rows => rows.map(r => r.dataset.kind)"))) >= 6
    problems = overflow(page)

    # When they show only the orders
    with page.expect_navigation():
        page.locator("#timeline .c360-filter").get_by_role("link", name="Orders", exact=True).click()
    # Then only orders are listed, the filter says which, and the page is the first
    expect(page).to_have_url(re.compile(r"\?timeline_type=orders#timeline$"))
    expect(page.locator('#timeline .c360-filter a[aria-current="page"]')).to_have_text("Orders")
    expect(rows).to_have_count(50)
    assert set(rows.evaluate_all("rows => rows.map(r => r.dataset.kind)")) == {"orders"}
    newest = rows.first.locator("time").get_attribute("datetime")

    # When they go to the older page, then back
    with page.expect_navigation():
        page.locator("#timeline .c360-pages").get_by_role("link", name="Older").click()
    expect(page).to_have_url(re.compile(r"timeline_type=orders&timeline_page=2#timeline$"))
    expect(rows).to_have_count(11)
    expect(page.locator("#timeline .c360-page")).to_have_text("Page 2")
    expect(page.locator("#timeline .c360-pages a[rel=next]")).to_have_count(0)
    assert rows.first.locator("time").get_attribute("datetime") < newest
    problems += overflow(page)
    with page.expect_navigation():
        page.locator("#timeline .c360-pages").get_by_role("link", name="Newer").click()
    expect(rows.first.locator("time")).to_have_attribute("datetime", newest)

    # And right to left (Arabic), the page is as narrow
    page.context.add_cookies([{"name": "django_language", "value": "ar", "url": page.url}])
    page.goto(url)
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    expect(page.locator("#customer-summary")).to_be_visible()
    problems += overflow(page)
    assert not problems, "wider than the screen:\n" + "\n".join(problems)
