"""The managers' home (the admin's index): the figures that matter, each equal to the KPI services' value,
with its change against the period before (in percentage points for rates), whether that change is good news
(the definitions say which direction is good) and its trend."""

import datetime as dt
from decimal import Decimal

import pytest
from django.test import Client

import metrics.admin as metrics_admin
from metrics.services.definitions import ALL, HOME, QUEUE
from metrics.services.home import manager_home
from metrics.services.kpis import kpis_for_period
from metrics.services.periods import month_of
from tests.factories import CustomerFactory, OrderFactory, WinbackCaseFactory
from tests.metrics.conftest import at
from winback.services.lifecycle import lifecycle_scan

pytestmark = pytest.mark.django_db
NOW = at(2026, 4, 10)  # the home shows March 2026 against February
MARCH, FEBRUARY = month_of(dt.date(2026, 3, 1)), month_of(dt.date(2026, 2, 1))


@pytest.fixture
def scenario(shop):
    """February: one customer active at its start, none lost, one in the lapsed pool, nobody back.
    March: two active at its start, one of them lapses (churn 50%); the pool customer returns (reactivation
    100%). A win-back case won on 10 March whose customer orders 50 + 30 within the 30-day window (and 70
    after it). The queue: one callable case open since 20 March, another since 5 April, and cases that do not
    count (held out, no phone, closed)."""
    shop.customer(at(2026, 2, 15))  # stable: acquired in February, active all March
    shop.customer(at(2025, 12, 5), at(2026, 3, 20))  # active at 1 February, lapses 5 March, back 20 March
    shop.customer(at(2025, 10, 1), at(2026, 3, 10))  # lapsed 30 December: the pool; back 10 March
    shop.flush()
    lifecycle_scan(full=True, now=at(2026, 4, 2))
    won = WinbackCaseFactory(lapsed_at=at(2026, 1, 5), opened_at=at(2026, 1, 5), status="won",
                             closed_at=at(2026, 3, 10), ready=False)
    OrderFactory(customer=won.customer, ordered_at=at(2026, 3, 10), amount=Decimal("50.00"))
    OrderFactory(customer=won.customer, ordered_at=at(2026, 3, 20), amount=Decimal("30.00"))
    OrderFactory(customer=won.customer, ordered_at=at(2026, 4, 25), amount=Decimal("70.00"))  # after the window
    oldest = WinbackCaseFactory(lapsed_at=at(2026, 3, 20), opened_at=at(2026, 3, 20))
    WinbackCaseFactory(lapsed_at=at(2026, 4, 5), opened_at=at(2026, 4, 5))
    WinbackCaseFactory(lapsed_at=at(2026, 3, 1), opened_at=at(2026, 3, 1), holdout=True)  # never called
    WinbackCaseFactory(lapsed_at=at(2026, 3, 1), opened_at=at(2026, 3, 1), customer=CustomerFactory(phone=""))
    WinbackCaseFactory(lapsed_at=at(2026, 3, 2), opened_at=at(2026, 3, 2), status="lost", closed_at=at(2026, 3, 25))
    return oldest


def by_name(home):
    return {f.name: f for f in home.figures}


def test_the_home_shows_the_figures_that_matter_each_equal_to_the_kpi_services_value(scenario):
    # Given the scenario, when the home is computed on 10 April
    home = manager_home(now=NOW)
    figures = by_name(home)
    # Then it is about March against February, with the figures in their order, the queue last
    assert (home.period, home.previous) == (MARCH, FEBRUARY)
    assert list(figures) == [*HOME, *QUEUE]
    # And each period figure is the KPI page's own value for March and for February
    march, february = kpis_for_period(period=MARCH).figures, kpis_for_period(period=FEBRUARY).figures
    for name in HOME:
        assert figures[name].value == march[name].value, name
        assert figures[name].previous == february[name].value, name
        assert figures[name].definition == str(ALL[name].formula)
        assert figures[name].good_direction == ("up" if ALL[name].higher_is_better else "down")
        assert figures[name].sparkline.startswith("<svg") and len(figures[name].points) == 12


def test_a_rates_change_is_in_percentage_points_and_judged_by_the_good_direction(scenario):
    figures = by_name(manager_home(now=NOW))
    # Churn went from 0 of 1 to 1 of 2: 50 points up, and churn going up is bad news
    churn = figures["churn_rate"]
    assert (churn.previous, churn.value) == (0.0, 0.5)
    assert (churn.change_text, churn.judgement, churn.good_direction) == ("+50.0 pp", "worse", "down")
    assert churn.value_text == "50.0%"
    # The pool customer came back: reactivation 0% -> 100%, and up is good
    reactivation = figures["reactivation_rate"]
    assert (reactivation.previous, reactivation.value) == (0.0, 1.0)
    assert (reactivation.change_text, reactivation.judgement, reactivation.good_direction) == ("+100.0 pp", "better", "up")
    # Revenue won back: 50 + 30 inside the 30 days after the win (the 70 later is not), none in February
    revenue = figures["revenue_won_back"]
    assert (revenue.value, revenue.previous, revenue.change_text, revenue.judgement) == (80.0, 0.0, "+80.00", "better")
    # The counts behind the figures are there (and link to their lists on the page)
    assert [p["text"] for p in churn.inputs] == ["1", " of ", "2"]
    assert [p.get("key") for p in churn.inputs] == ["L0", None, "CS"]


def test_the_queue_is_read_now_and_compared_with_the_start_of_the_month(scenario):
    figures = by_name(manager_home(now=NOW))
    depth, age = figures["queue_depth"], figures["oldest_case_age_days"]
    # Now: the cases of 20 March and 5 April wait (the held-out one, the one without a phone and the lost
    # one do not); on 1 April only the one of 20 March did. More waiting is worse.
    assert (depth.value, depth.previous, depth.change_text, depth.judgement, depth.good_direction) == (2, 1, "+1", "worse", "down")
    assert age.value == pytest.approx(21.0)  # 20 March 12:00 to 10 April 12:00
    assert age.previous == pytest.approx(11.5)  # to 1 April 00:00
    assert (age.change_text, age.judgement) == ("+9.5 days", "worse")
    assert depth.points[-1] == (NOW.strftime("%Y-%m-%d %H:%M"), 2)


def test_ces_going_up_is_worse_and_no_change_is_judged_neither_way():
    from metrics.services.charts import change_judgement, format_change

    assert ALL["ces"].good_direction == "down" and ALL["nps"].good_direction == "up"
    assert change_judgement(0.4, higher_is_better=ALL["ces"].higher_is_better) == "worse"
    assert change_judgement(0.0, higher_is_better=True) == "same"
    assert change_judgement(None, higher_is_better=True) == ""
    assert format_change(-0.0123, "rate") == "-1.2 pp" and format_change(None, "rate") == ""


def test_the_admin_index_is_the_home_with_every_figure_its_sparkline_and_links(scenario, manager, monkeypatch):
    # Given the home as of 10 April
    monkeypatch.setattr(metrics_admin, "manager_home", lambda: manager_home(now=NOW))
    client = Client()
    client.force_login(manager)
    # When the manager opens the site's root and follows it
    response = client.get("/", follow=True)
    # Then they are on the admin's index, which shows the figures above the app list
    assert response.redirect_chain[-1][0] == "/admin/"
    page = response.content.decode()
    assert page.index('id="home-figures"') < page.index('class="app-crm module')
    for name in [*HOME, *QUEUE]:
        assert f'data-figure="{name}"' in page, name
    assert page.count('class="sparkline"') == len(HOME) + len(QUEUE)
    assert 'data-figure="churn_rate" data-good="down" data-judgement="worse"' in page
    assert '<bdi dir="ltr">+50.0</bdi> pp' in page and "lower is better" in page and "higher is better" in page
    # Each figure says how it is computed, and leads to the KPI page and the list behind it
    assert f'title="{ALL["churn_rate"].formula}"' in page
    assert "/admin/metrics/metricsnapshot/?month=2026-03#kpi-card-churn_rate" in page
    assert "/admin/crm/customer/?kpi=L0&amp;period=2026-03-01..2026-04-01" in page
    assert "/admin/winback/winbackcase/?kpi=queue" in page
    # And "View site" leads to the root, which leads back here
    assert 'href="/"' in page


def test_agents_never_see_the_home(agent):
    client = Client()
    client.force_login(agent)
    response = client.get("/admin/", follow=True)
    assert 'id="home-figures"' not in response.content.decode()
    assert response.redirect_chain[-1][0].startswith("/admin/login/")
