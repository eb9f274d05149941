"""The managers' two screens in headless Chromium: the home (the admin's index) with its figures and their
sparklines, the KPI page's definitions behind a toggle, a count that opens the filtered list behind it, and
neither page wider than the screen at 1440 and at 390 px."""

import datetime as dt
import re

import pytest
from django.utils import timezone

from metrics.services.definitions import HOME, QUEUE
from metrics.services.periods import add_months
from tests.browser import assert_png, browser, login, page, screenshot  # noqa: F401 (browser, page: fixtures)
from tests.factories import WinbackCaseFactory
from tests.metrics.test_kpi_browser import set_password
from winback.services.lifecycle import lifecycle_scan

from playwright.sync_api import expect  # after tests.browser: it skips the module when playwright is missing

pytestmark = pytest.mark.django_db
PASSWORD = "screens-browser-pass-2025"
KPIS = "/admin/metrics/metricsnapshot/"

# Every element outside a box that scrolls or clips its content must lie inside the viewport; the page itself
# must not scroll sideways. Returns the offenders (tag#id.class and their box) for the assertion's message.
OVERFLOW_JS = """() => {
  const width = document.documentElement.clientWidth;
  const clipped = (el) => {
    for (let p = el.parentElement; p; p = p.parentElement) {
      const o = getComputedStyle(p).overflowX;
      if (o === 'auto' || o === 'scroll' || o === 'hidden' || o === 'clip') return true;
    }
    return false;
  };
  const out = [];
  if (document.documentElement.scrollWidth > width + 1) out.push('page scrollWidth ' + document.documentElement.scrollWidth);
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    if ((r.right > width + 1 || r.left < -1) && !clipped(el)) {
      out.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.className && el.className.baseVal === undefined ? '.' + String(el.className).split(' ').join('.') : '') + ' ' + Math.round(r.left) + '..' + Math.round(r.right));
    }
  }
  return out.slice(0, 15);
}"""


@pytest.fixture
def recent_shop(shop):
    """Customers and cases around the last two complete months, so that the home's figures have values."""
    this_month = timezone.localdate().replace(day=1)
    last, before = add_months(this_month, -1), add_months(this_month, -2)

    def t(day: dt.date, d: int = 0) -> dt.datetime:
        return dt.datetime.combine(day + dt.timedelta(days=d), dt.time(12), tzinfo=dt.UTC)

    for i in range(4):
        shop.customer(t(add_months(before, -2), i), t(before, i + 1))  # active at the start of the last month
    shop.customer(t(add_months(before, -6)), t(last, 5))  # in the lapsed pool, back last month
    shop.customer(t(last, 3))  # new last month
    shop.flush()
    lifecycle_scan(full=True, now=timezone.now())
    for i in range(3):
        WinbackCaseFactory(lapsed_at=t(last, i), opened_at=t(last, i))  # waiting in the queue
    WinbackCaseFactory(lapsed_at=t(before), opened_at=t(before), status="won", closed_at=t(last, 2), ready=False)


@pytest.fixture
def screens_manager(manager, recent_shop):
    return set_password(manager, PASSWORD)


def no_overflow(page) -> list[str]:
    return page.evaluate(OVERFLOW_JS)


def test_the_manager_lands_on_the_home_with_every_figure_and_its_sparkline(page, screens_manager):
    # Given a manager who opens the site
    page.goto("/")
    login(page, "manager", PASSWORD)
    # Then they land on the admin's index, which is the home: the figures above the app list
    expect(page).to_have_url(re.compile(r"/admin/$"))
    figures = page.locator("#home-figures .home-figure")
    expect(figures).to_have_count(len(HOME) + len(QUEUE))
    for name in [*HOME, *QUEUE]:
        figure = page.locator(f'.home-figure[data-figure="{name}"]')
        expect(figure).to_be_visible()
        spark = figure.locator("svg.sparkline")
        expect(spark).to_be_visible()
        box = spark.bounding_box()
        assert box and box["width"] > 50 and box["height"] > 10, (name, box)
        expect(figure.locator(".kpi-good")).to_contain_text(re.compile(r"(higher|lower) is better"))
    # The queue has three callable cases now, and more waiting is worse
    queue = page.locator('.home-figure[data-figure="queue_depth"]')
    expect(queue.locator(".home-value")).to_have_text("3")
    expect(queue).to_have_attribute("data-good", "down")
    # Each figure's definition is one click away
    churn = page.locator('.home-figure[data-figure="churn_rate"]')
    expect(churn.locator(".kpi-how")).to_be_hidden()
    churn.locator("summary").click()
    expect(churn.locator(".kpi-how")).to_be_visible()
    expect(churn.locator(".kpi-how")).to_contain_text("L0 / CS")
    assert_png(screenshot(page, "manager-home"))
    # And "Details" leads to the KPI page of that month
    with page.expect_navigation():
        churn.locator("a.home-detail").click()
    expect(page).to_have_url(re.compile(r"/admin/metrics/metricsnapshot/\?month=\d{4}-\d{2}#kpi-card-churn_rate$"))
    expect(page.locator("#kpi-card-churn_rate")).to_be_visible()


def test_the_kpi_page_keeps_its_definitions_behind_a_toggle_and_a_count_opens_its_list(page, screens_manager):
    page.goto(KPIS)
    login(page, "manager", PASSWORD)
    expect(page.locator("#kpi-presets a")).to_have_count(4)
    churn = page.locator('.kpi-card[data-metric="churn_rate"]')
    how = churn.locator(".kpi-how")
    # The definition and inputs are hidden until the toggle opens them
    expect(how).to_be_hidden()
    churn.locator("summary").click()
    expect(how).to_be_visible()
    expect(how).to_contain_text(re.compile(r"How: L0 / CS.*\d+ of \d+"))
    # A count opens the list of the customers behind it, filtered, as long as the count
    count = page.locator('#kpi-counts a[data-drill="CS"]')
    shown = int(count.inner_text())
    assert shown > 0
    with page.expect_navigation():
        count.click()
    expect(page).to_have_url(re.compile(r"/admin/crm/customer/\?kpi=CS&period=\d{4}-\d{2}-01\.\.\d{4}-\d{2}-01$"))
    expect(page.locator("#result_list tbody tr")).to_have_count(shown)
    expect(page.locator("#changelist-filter")).to_contain_text("Active at start (CS)")


@pytest.mark.parametrize("width", [1440, 390])
@pytest.mark.parametrize("url", ["/admin/", KPIS], ids=["home", "kpis"])
def test_no_element_is_wider_than_the_screen(page, screens_manager, width, url):
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(url)
    login(page, "manager", PASSWORD)
    expect(page.locator("#content")).to_be_visible()
    # Open every toggle: what it shows must fit too
    page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
    assert no_overflow(page) == []
    name = ("home" if url == "/admin/" else "kpis") + f"-{width}"
    assert_png(screenshot(page, name))
