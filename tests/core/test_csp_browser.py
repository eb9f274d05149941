"""Every kind of page under the Content-Security-Policy and Permissions-Policy the app sends, in headless
Chromium at a desktop and a phone width: the scripts that moved to static files run, the stylesheets that
replaced inline styles apply, and the browser reports no policy violation and no console error."""

import re

import pytest
from django.conf import settings

from crm.models import Customer
from tests.browser import browser, login, page  # noqa: F401 (browser, page: fixtures)
from tests.metrics.test_kpi_browser import set_password
from tests.metrics.test_kpi_page import KPIS, demo_with_snapshots  # noqa: F401 (demo_with_snapshots: fixture)
from tests.winback.test_agent_browser import PASSWORD, named_case
from touchpoints.models import CadenceStep
from touchpoints.services.links import unsubscribe_url
from winback.models import Disposition

from playwright.sync_api import expect  # after tests.browser: it skips the module when playwright is missing

VIEWPORTS = {"desktop": {"width": 1440, "height": 900}, "phone": {"width": 390, "height": 844}}
# In every frame of every page: a violation the policy reports, with what was blocked and where.
VIOLATIONS = """document.addEventListener("securitypolicyviolation", (e) => window.cspViolation(
    `${e.effectiveDirective} refused ${e.blockedURI || "inline"} in ${e.documentURI} (${e.sourceFile}:${e.lineNumber})`));"""


@pytest.fixture(params=list(VIEWPORTS), ids=list(VIEWPORTS))
def watched(request, page):
    """The test's page at the parameter's width, and the list of problems the browser reports on it."""
    page.set_viewport_size(VIEWPORTS[request.param])
    problems: list[str] = []
    page.expose_function("cspViolation", lambda text: problems.append(text))
    page.add_init_script(VIOLATIONS)
    page.on("console", lambda message: problems.append(f"console {message.type}: {message.text} ({page.url})")
            if message.type in ("error", "warning") or "Refused to" in message.text else None)
    return page, problems


def background(locator) -> str:
    return locator.evaluate("element => getComputedStyle(element).backgroundColor")


def test_the_browser_enforces_the_policy_and_reports_what_it_refuses(watched):
    # The other side of the checks below: the policy the app sends is in force, and its refusals are seen.
    page, problems = watched
    page.goto("/accounts/login/")
    # When a script and a style attribute are written into the page, as an injection would
    page.evaluate("""() => {
        const script = document.createElement("script");
        script.textContent = "window.injected = true;";
        document.body.append(script);
        document.body.insertAdjacentHTML("beforeend", '<p id="styled" style="color: rgb(255, 0, 0)">x</p>');
    }""")
    # Then neither takes effect, and both refusals are reported
    assert page.evaluate("() => window.injected") is None
    expect(page.locator("#styled")).not_to_have_css("color", "rgb(255, 0, 0)")
    expected = ("script-src-elem refused inline", "style-src-attr refused inline")
    for _ in range(100):  # the reports arrive as events, a moment later
        if all(text in " ".join(problems) for text in expected):
            break
        page.wait_for_timeout(50)
    assert all(text in " ".join(problems) for text in expected), problems


def test_an_agent_works_a_case_with_the_keyboard_under_the_policy(watched, agent):
    page, problems = watched
    case = named_case("Ada Lovelace", priority=500)

    # Given the login page (its stylesheet applies: the card is white on the grey page)
    page.goto("/agent/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    assert background(page.locator(".login-card")) == "rgb(255, 255, 255)"
    login(page, "agent", PASSWORD)

    # When the agent presses "n" on the queue page (static/agent/home.js)
    expect(page.locator("#next")).to_be_focused()
    page.keyboard.press("n")
    # Then the case is claimed and its card shown
    expect(page).to_have_url(re.compile(rf"/agent/case/{case.pk}/$"))
    expect(page.locator("h1")).to_contain_text("Ada Lovelace")
    expect(page.locator("#phone")).to_have_attribute("href", f"tel:{case.customer.phone}")

    # When they press "3" (static/agent/case.js): a callback, which then asks for its time
    expect(page.locator('#disposition input[name="outcome"]').first).to_be_focused()
    page.keyboard.press("3")
    expect(page.get_by_label("Callback requested")).to_be_checked()
    expect(page.locator("#id_callback_at")).to_be_focused()
    # And change their mind: away from the field, "4" is no answer, and Ctrl+Enter saves
    page.locator("h1").click()
    page.keyboard.press("4")
    expect(page.get_by_label("No answer")).to_be_checked()
    with page.expect_navigation():
        page.keyboard.press("Control+Enter")
    expect(page.locator(".messages")).to_contain_text("Saved: Ada Lovelace (No answer).")
    assert Disposition.objects.get(case=case).outcome == "no_answer"

    # And nothing was refused or failed on the way
    page.wait_for_load_state("networkidle")
    assert not problems, "\n".join(problems)


def test_the_admin_kpis_email_preview_api_docs_and_a_customers_page_run_under_the_policy(watched, manager,
                                                                                         demo_with_snapshots):  # noqa: F811
    page, problems = watched
    set_password(manager, PASSWORD)

    # The admin's login form, then the KPI page
    page.goto(f"{KPIS}?month=2025-03")
    expect(page).to_have_url(re.compile(r"/admin/login/\?next="))
    login(page, "manager", PASSWORD)
    expect(page.locator("#content h1")).to_have_text("KPIs: 2025-03")
    charts = page.locator(".kpi-charts svg")
    expect(charts.first).to_be_visible()
    box = charts.first.bounding_box()
    assert box is not None and box["width"] > 0 and box["height"] > 0
    # The numbers behind a chart open (details/summary: the page needs no script)
    numbers = page.locator(".kpi-chart-box details").first
    numbers.locator("summary").click()
    expect(numbers.locator("table")).to_be_visible()
    # The cohort heatmap is coloured by static/metrics/kpis.css, not by style attributes
    heat = page.locator("#kpi-cohorts td[class^=heat-]").first
    expect(heat).to_be_visible()
    assert background(heat).startswith("rgba(65, 118, 144, "), background(heat)

    # The customers' changelist
    page.goto("/admin/crm/customer/")
    expect(page.locator("#result_list tbody tr").first).to_be_visible()

    # An email's preview: the HTML part in its sandboxed frame, its inline styles applied there
    step = CadenceStep.objects.filter(channel="email", cadence__marketing=True).exclude(template="").first()
    page.goto(f"/admin/touchpoints/cadence/step/{step.pk}/preview/?locale=ar")
    email = page.frame_locator("#preview-html")
    expect(email.locator("body")).to_have_attribute("dir", "rtl")
    expect(email.locator("body")).to_have_css("background-color", "rgb(244, 245, 247)")
    expect(page.locator("#preview-text")).to_have_css("white-space", "pre-wrap")

    # A customer's page from an email link (unsubscribe), styled by its stylesheet
    customer = Customer.objects.order_by("pk").first()
    page.goto(unsubscribe_url(customer_id=customer.pk, touchpoint_id=0).removeprefix(settings.SITE_URL.rstrip("/")))
    expect(page.locator("main")).to_have_css("background-color", "rgb(255, 255, 255)")

    # The API docs: Swagger UI's init script (a request of its own) lists the operations
    page.goto("/api/docs/")
    expect(page.locator(".opblock").first).to_be_visible(timeout=20_000)
    assert page.locator(".opblock").count() > 10

    page.wait_for_load_state("networkidle")
    assert not problems, "\n".join(problems)
