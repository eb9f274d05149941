"""The win-back funnel on the KPI page in headless Chromium: bars as wide as their counts, each opening its
cases' list with as many rows, readable at 390 px and in Arabic (right to left)."""

import re

import pytest

from core.models import UserPreference
from tests.browser import browser, login, page  # noqa: F401 (browser, page: fixtures)
from tests.i18n_check import VISIBLE_TEXT_JS, catalogue_english_left, latin_words_outside_data
from tests.metrics.test_funnel import EXPECTED, KPIS, march  # noqa: F401 (march: fixture)
from tests.metrics.test_kpi_browser import PASSWORD, set_password

from playwright.sync_api import expect  # after tests.browser: it skips the module when playwright is missing

pytestmark = pytest.mark.django_db(transaction=True)

# Elements of the funnel wider than the window (the page must not scroll sideways for it).
FUNNEL_TOO_WIDE_JS = """
() => {
  const width = document.documentElement.clientWidth;
  const out = [];
  for (const el of document.querySelectorAll('#kpi-funnel, #kpi-funnel *')) {
    if (el.closest('details:not([open])')) continue;
    const box = el.getBoundingClientRect();
    if (box.width === 0) continue;
    if (box.left < -1 || box.right > width + 1) out.push(`${el.tagName}.${el.className} ${Math.round(box.left)}..${Math.round(box.right)}`);
  }
  return out.slice(0, 10);
}
"""


@pytest.fixture
def manager_page(page, manager, march):  # noqa: F811 (page, march: fixtures)
    set_password(manager)
    page.goto(f"{KPIS}?month=2026-03")
    login(page, "manager", PASSWORD)
    expect(page.locator("#kpi-funnel")).to_be_visible()
    return page


def bar_widths(page) -> dict[str, float]:
    bars = page.locator("#kpi-funnel .kpi-funnel-stage")
    out = {}
    for i in range(bars.count()):
        stage = bars.nth(i)
        out[stage.get_attribute("data-stage")] = stage.locator(".kpi-funnel-bar").bounding_box()["width"]
    return out


def test_the_bars_follow_the_counts_and_open_their_cases(manager_page):
    page = manager_page
    # Given March's funnel: 10 opened, 6 callable, 5 attempted, 4 reached, 2 offered, 1 redeemed, 1 reactivated
    counts = {s.get_attribute("data-stage"): int(s.get_attribute("data-count"))
              for s in page.locator("#kpi-funnel .kpi-funnel-stage").all()}
    assert counts == EXPECTED
    # Then each bar is as wide as its count against the cases opened (the narrowest keep a minimum for
    # their number: compared from 4 cases up)
    widths = bar_widths(page)
    for stage, n in EXPECTED.items():
        if n >= 4:
            assert widths[stage] / widths["opened"] == pytest.approx(n / 10, abs=0.02), (stage, widths)
    assert widths["opened"] > widths["callable"] > widths["attempted"] > widths["reached"] > widths["offered"]
    # And the drop between stages is written above the narrower bar
    expect(page.locator('#kpi-funnel [data-stage="callable"] .kpi-funnel-drop')).to_have_text("4 cases dropped")
    # When the "reached" bar is opened, the admin's case list holds its 4 cases
    page.locator('#kpi-funnel [data-stage="reached"] .kpi-funnel-bar').click()
    expect(page).to_have_url(re.compile(r"/admin/winback/winbackcase/\?.*kpi=funnel%3Areached"))
    expect(page.locator("#result_list tbody tr")).to_have_count(4)


@pytest.mark.parametrize("language", ["en", "ar"])
def test_the_funnel_fits_a_phone_in_each_direction(manager_page, manager, language):
    page = manager_page
    UserPreference.objects.update_or_create(user=manager, defaults={"language": language})
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{KPIS}?month=2026-03")
    expect(page.locator("html")).to_have_attribute("dir", "rtl" if language == "ar" else "ltr")
    # Then no part of the funnel is wider than the phone, and the bars still narrow stage by stage
    assert page.evaluate(FUNNEL_TOO_WIDE_JS) == []
    widths = bar_widths(page)
    assert widths["opened"] > widths["callable"] > widths["reached"]
    # And the bars are centred in either direction (a funnel, whichever way the page reads)
    box = page.locator('#kpi-funnel [data-stage="callable"] .kpi-funnel-bar').bounding_box()
    row = page.locator('#kpi-funnel [data-stage="callable"]').bounding_box()
    assert abs((box["x"] - row["x"]) - (row["x"] + row["width"] - box["x"] - box["width"])) <= 2
    # And the funnel is in the page's language: page_language_problems' two checks, over the funnel only (the
    # sections other work adds to the page are theirs to check)
    nodes = page.evaluate(VISIBLE_TEXT_JS, page.locator("#kpi-funnel").element_handle())
    problems = catalogue_english_left([n["text"] for n in nodes if not n["isolated"]], language)
    if language == "ar":
        problems += latin_words_outside_data(nodes)
    assert problems == [], problems
