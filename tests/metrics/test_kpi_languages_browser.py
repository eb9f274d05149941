"""The KPI page and the managers' home in each language, in headless Chromium (issue 16): the page is in the
manager's language and direction, fits a desktop and a phone, and its figures read right in right-to-left: a
signed change keeps its sign at the left of its digits, and a duration's unit word lies on the side of the
number that the language reads after it."""

import re

import pytest
from django.utils import translation
from django.utils.translation import gettext

from core.models import UserPreference
from tests.browser import browser, login, page  # noqa: F401 (browser, page: fixtures)
from tests.i18n_check import page_language_problems
from tests.metrics.test_kpi_browser import PASSWORD, kpi_manager  # noqa: F401 (kpi_manager: fixture)
from tests.metrics.test_kpi_page import KPIS, demo_with_snapshots  # noqa: F401 (demo_with_snapshots: fixture)

from playwright.sync_api import expect  # after tests.browser: it skips the module when playwright is missing

pytestmark = pytest.mark.django_db
LANGUAGES = {"en": "ltr", "ar": "rtl", "fa": "rtl", "hu": "ltr"}

# Elements wider than the window, outside the boxes that scroll on their own (wide tables).
TOO_WIDE_JS = """
() => {
  const width = document.documentElement.clientWidth;
  const out = [];
  for (const el of document.querySelectorAll('body *')) {
    if (el.closest('.kpi-scroll, details:not([open])')) continue;
    const box = el.getBoundingClientRect();
    if (box.width === 0) continue;
    if (box.left < -1 || box.right > width + 1) out.push(`${el.tagName}.${el.className} ${Math.round(box.left)}..${Math.round(box.right)}`);
  }
  if (document.documentElement.scrollWidth > width) out.push(`page ${document.documentElement.scrollWidth} > ${width}`);
  return out.slice(0, 10);
}
"""

# Where the pieces of an isolated number (<bdi>) and the text after it lie on the screen.
GEOMETRY_JS = """
(bdi) => {
  const text = bdi.firstChild;
  const rect = (start, end) => { const r = document.createRange(); r.setStart(text, start); r.setEnd(text, end);
                                 const b = r.getBoundingClientRect(); return {left: b.left, right: b.right}; };
  const after = document.createRange();
  after.selectNodeContents(bdi.parentElement);
  after.setStartAfter(bdi);
  const a = after.getBoundingClientRect();
  const n = bdi.getBoundingClientRect();
  return {sign: rect(0, 1), digits: rect(1, text.length), number: {left: n.left, right: n.right},
          after: {left: a.left, right: a.right, text: after.toString().trim()}};
}
"""


def in_language(language: str, msgid: str, **values) -> str:
    with translation.override(language):
        return gettext(msgid) % values


def assert_reads_right(page, language: str) -> None:
    for width, height in ((1440, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        assert page.evaluate(TOO_WIDE_JS) == [], f"wider than the window at {width} px"
    page.set_viewport_size({"width": 1440, "height": 900})
    expect(page.locator("html")).to_have_attribute("lang", language)
    expect(page.locator("html")).to_have_attribute("dir", LANGUAGES[language])
    problems = page_language_problems(page, language)
    assert problems == [], "\n".join(problems)


@pytest.fixture
def manager_in(kpi_manager, page):  # noqa: F811 (kpi_manager: the imported fixture)
    def log_in(language: str):
        UserPreference.objects.update_or_create(user=kpi_manager, defaults={"language": language})
        page.goto(f"{KPIS}?month=2025-03")
        login(page, "manager", PASSWORD)
        expect(page.locator("#kpi-cards")).to_be_visible()
        return page
    return log_in


@pytest.mark.parametrize("language", list(LANGUAGES))
def test_the_kpi_page_and_the_home_read_right_in_each_language(manager_in, language):
    # Given a manager whose pages are in the language, on the KPI page of March 2025 of the demo shop
    page = manager_in(language)

    # Then the page is in that language and direction, and fits a desktop and a phone
    assert_reads_right(page, language)

    # And a rate's change reads "+0.4 pp" in the language, the sign at the left of its digits
    change = page.locator('.kpi-card[data-metric="churn_rate"] .kpi-change bdi').first
    signed = change.inner_text()
    assert re.fullmatch(r"[+\-\u00b1]\d+[.,]\d", signed), signed
    pp = in_language(language, "%(value)s pp", value=signed)
    expect(page.locator('.kpi-card[data-metric="churn_rate"] .kpi-change')).to_contain_text(pp)
    geometry = change.evaluate(GEOMETRY_JS)
    assert abs(geometry["sign"]["right"] - geometry["digits"]["left"]) < 1.5, geometry
    assert geometry["sign"]["left"] <= geometry["number"]["left"] + 0.5, geometry

    # And a duration reads "321.7 days" in the language, its unit after the number as the language reads
    tenure = page.locator('.kpi-card[data-metric="tenure_lost_days"] .kpi-value')
    number = tenure.locator("bdi")
    days = in_language(language, "%(value)s days", value=number.inner_text())
    expect(tenure).to_have_text(days)
    geometry = number.evaluate(GEOMETRY_JS)
    assert geometry["after"]["text"], geometry  # the unit word
    if LANGUAGES[language] == "rtl":
        assert geometry["after"]["right"] <= geometry["number"]["left"] + 0.5, geometry
    else:
        assert geometry["after"]["left"] >= geometry["number"]["right"] - 0.5, geometry

    # When they open the admin's home
    page.goto("/admin/")
    expect(page.locator("#home-figures")).to_be_visible()
    # Then it too is in the language and fits
    assert_reads_right(page, language)
