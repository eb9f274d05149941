"""The KPI page in headless Chromium: a manager logs in through the admin's login form, reads the headline
cards, the charts and the tables of a month of the demo shop, changes the month with the form; an agent is
turned away."""

import re

import pytest

from metrics.services.definitions import HEADLINE
from tests.browser import assert_png, browser, login, page, screenshot  # noqa: F401 (browser, page: fixtures)
from tests.metrics.test_kpi_page import KPIS, demo_with_snapshots  # noqa: F401 (demo_with_snapshots: fixture)

from playwright.sync_api import expect  # after tests.browser: it skips the module when playwright is missing

PASSWORD = "kpi-browser-pass-2025"


def set_password(user, password: str = PASSWORD):
    user.refresh_from_db()  # the demo seeder resets the password (and flags) of its own "manager" and "agent"
    user.set_password(password)
    user.save()
    return user


@pytest.fixture
def kpi_manager(manager, demo_with_snapshots):  # noqa: F811 (demo_with_snapshots: the imported fixture)
    user = set_password(manager)
    assert user.is_staff and user.groups.filter(name="Managers").exists()
    return user


def test_a_manager_logs_in_reads_the_kpis_of_a_month_and_changes_the_period(page, kpi_manager):
    # 1. An anonymous visit lands on the admin's login form; logging in there leads back to the page.
    page.goto(f"{KPIS}?month=2025-03")
    expect(page).to_have_url(re.compile(r"/admin/login/\?next="))
    login(page, "manager", PASSWORD)
    expect(page).to_have_url(re.compile(r"/admin/metrics/metricsnapshot/\?month=2025-03$"))
    expect(page).to_have_title(re.compile(r"^KPIs: 2025-03\b"))
    expect(page.locator("#content h1")).to_have_text("KPIs: 2025-03")
    expect(page.locator("#kpi-period + p.help")).to_contain_text(re.compile(r"^Period 2025-03 = .*, compared with 2025-02\."))

    # 2. Every headline card is there and visible; churn shows a percentage and how it is computed.
    cards = page.locator("#kpi-cards .kpi-card")
    expect(cards).to_have_count(len(HEADLINE))
    for name in HEADLINE:
        expect(page.locator(f'.kpi-card[data-metric="{name}"]')).to_be_visible()
    churn = page.locator('.kpi-card[data-metric="churn_rate"]')
    expect(churn.locator("h3")).to_have_text("Churn rate")
    expect(churn.locator(".kpi-value")).to_have_text(re.compile(r"^\d+\.\d%$"))
    expect(churn.locator(".kpi-how")).to_contain_text("How: L0 / CS")
    expect(churn.locator(".kpi-how")).to_contain_text(re.compile(r"\d+ of \d+"))  # the inputs, e.g. "12 of 240"

    # 3. The monthly charts are drawn: real SVG boxes with a size on the screen.
    charts = page.locator(".kpi-charts svg")
    expect(charts.first).to_be_visible()
    assert charts.count() >= 6, f"only {charts.count()} charts on the page"
    for i in range(charts.count()):
        box = charts.nth(i).bounding_box()
        assert box is not None and box["width"] > 0 and box["height"] > 0, f"chart {i} is not drawn: {box}"

    # 4. The cohort and agents tables.
    expect(page.locator("#kpi-cohorts")).to_be_visible()
    expect(page.locator("#kpi-cohorts tbody tr").first).to_be_visible()  # the demo shop has cohorts
    expect(page.locator("#kpi-agents")).to_be_visible()
    expect(page.locator("#kpi-agents thead th").first).to_have_text("agent")
    # The predicted customer value: the demo has no fitted model, so n/a and how to get one.
    expect(page.locator("#kpi-predicted h2")).to_have_text("Predicted customer value")
    expect(page.locator("#kpi-predicted-na")).to_contain_text("manage.py fit_models")

    png = screenshot(page, "kpi-page")

    # 5. Another month through the form: type it into the month box and submit.
    month = page.locator('#kpi-period input[name="month"]')
    expect(month).to_have_value("2025-03")
    chart_to = page.locator('#kpi-period input[name="to"]')
    expect(chart_to).to_have_value("2025-03")  # the last month charted (the range's end is exclusive)
    month.fill("2025-02")
    with page.expect_navigation():
        page.locator("#kpi-period").get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"[?&]month=2025-02(&|$)"))
    expect(page).to_have_title(re.compile(r"^KPIs: 2025-02\b"))
    expect(page.locator("#content h1")).to_have_text("KPIs: 2025-02")
    expect(page.locator("#kpi-period + p.help")).to_contain_text(re.compile(r"^Period 2025-02 = .*, compared with 2025-01\."))
    expect(page.locator('#kpi-period input[name="month"]')).to_have_value("2025-02")
    expect(chart_to).to_have_value("2025-03")  # submitting keeps the chart range where it was
    expect(page.locator(".messages .error")).to_have_count(0)
    expect(cards).to_have_count(len(HEADLINE))
    expect(churn.locator(".kpi-value")).to_have_text(re.compile(r"^\d+\.\d%$"))

    # 6. The screenshot of the first month is a real picture.
    assert png.exists() and png.stat().st_size > 0, f"{png} is missing or empty"
    assert_png(png)


@pytest.mark.parametrize("is_staff", [False, True], ids=["agent", "agent-ticked-staff"])
def test_an_agent_is_refused_the_kpi_page(page, agent, is_staff):
    set_password(agent)
    if is_staff:  # the admin site also checks the group: the "staff" flag alone lets no agent in
        agent.is_staff = True
        agent.save(update_fields=["is_staff"])

    page.goto("/accounts/login/?next=/agent/")
    login(page, "agent", PASSWORD)
    expect(page).to_have_url(re.compile(r"/agent/$"))

    page.goto(f"{KPIS}?month=2025-03")
    expect(page).to_have_url(re.compile(r"/admin/login/\?next="))
    expect(page.locator("body")).to_contain_text("You are authenticated as agent, but are not authorized to access this page")
    expect(page.locator("[data-metric]")).to_have_count(0)
    expect(page.locator("#kpi-cards")).to_have_count(0)
