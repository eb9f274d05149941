"""The demo's KPI page in headless Chromium, logged in as the demo's manager: after `manage.py demo`'s set-up
(small), no headline card says n/a and the reasons, agents and cohorts tables have rows."""

import io
import re

import pytest

from config.management.commands.demo import demo_setup
from crm.services.demo_data import DEMO_LOGINS
from predictions.models import ModelFit
from tests.browser import browser, login, page  # noqa: F401 (browser, page: fixtures)
from tests.core.test_demo_activity import MONTHS, PERIOD, UNTIL

from playwright.sync_api import expect  # after tests.browser: it skips the module when playwright is missing

pytestmark = pytest.mark.django_db
KPIS = "/admin/metrics/metricsnapshot/"


def test_the_demo_managers_kpi_page_has_a_figure_in_every_card_and_rows_in_every_table(page):
    # Given the demo, set up as `manage.py demo` does (a small one, its "today" fixed: see test_demo_activity)
    demo_setup(customers=300, seed=42, months=MONTHS, stdout=io.StringIO(), until=UNTIL)
    username, password, _ = next(entry for entry in DEMO_LOGINS if entry[2] == "Managers")

    # When the demo's manager logs in and opens the KPI page of the demo's last complete month
    url = f"{KPIS}?month={PERIOD.start:%Y-%m}"
    page.goto(url)
    login(page, username, password)
    expect(page).to_have_url(re.compile(re.escape(url) + "$"))

    # Then every headline card has a figure: none is n/a
    values = page.locator("#kpi-cards .kpi-card .kpi-value")
    expect(values.first).to_be_visible()
    texts = {page.locator("#kpi-cards .kpi-card").nth(i).get_attribute("data-metric"): values.nth(i).inner_text().strip()
             for i in range(values.count())}
    # (the predicted CLV:CAC needs a usable purchase-model fit, which this demo's 300 customers do not give;
    # the 5,000 of `make demo` do: test_demo_activity says the same)
    empty = [name for name, text in texts.items() if not text or "n/a" in text]
    assert texts and empty == ([] if ModelFit.objects.filter(usable=True).exists() else ["clv_cac_ratio_predicted"]), texts

    # And the reasons, agents and cohorts tables have rows, none of them n/a
    for table, at_least in (("#kpi-reasons", 3), ("#kpi-agents", 3), ("#kpi-cohorts", 1)):
        rows = page.locator(f"{table} tbody tr")
        assert rows.count() >= at_least, (table, rows.count())
        assert "n/a" not in page.locator(f"{table} tbody").inner_text(), table
    expect(page.locator("#kpi-agents tbody tr").last).to_contain_text("Team")
