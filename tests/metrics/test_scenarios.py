"""Hand-built scenarios for every metric of docs/metrics.md sections 2-3 (March 2026, business time zone UTC)."""

import datetime as dt

import pytest

from core.models import BusinessSettings
from metrics.services.calculators import metrics_for_period
from metrics.services.periods import Period, month_of
from tests.factories import CustomerFactory, FeedbackFactory, OrderFactory
from tests.metrics.conftest import at
from winback.models import Coupon, WinbackCase
from winback.services.lifecycle import lifecycle_scan

pytestmark = pytest.mark.django_db
MARCH = month_of(dt.date(2026, 3, 1))


@pytest.fixture
def four_lives(shop):
    """Four customers whose lives cross March in the four ways that matter."""
    stable = shop.customer(at(2026, 2, 15))  # active all March
    back_same_month = shop.customer(at(2025, 12, 5), at(2026, 3, 20))  # lapses 5 March, returns 20 March
    from_the_pool = shop.customer(at(2025, 10, 1), at(2026, 3, 10))  # lapsed since 30 Dec, returns 10 March
    joins_and_leaves = shop.customer(at(2026, 3, 2))  # acquired 2 March, cancels 15 March
    shop.flush()
    shop.cancel(joins_and_leaves, at(2026, 3, 15))
    lifecycle_scan(full=True, now=at(2026, 4, 2))
    return stable, back_same_month, from_the_pool, joins_and_leaves


def values(figures, *names):
    return {n: figures[n].value for n in names}


def test_counts_for_joining_and_lapsing_and_lapsing_and_returning_in_the_same_period(four_lives):
    f = metrics_for_period(period=MARCH)
    # CS: stable and back-same-month; the pool customer was lapsed at S; the new one came in March
    assert values(f, "CS", "CN", "L0", "Ln", "R", "LP", "RP", "CE") == {
        "CS": 2, "CN": 1, "L0": 1, "Ln": 1, "R": 2, "LP": 1, "RP": 1, "CE": 3}


def test_rates_from_those_counts(four_lives):
    f = metrics_for_period(period=MARCH)
    assert f["churn_rate"].value == pytest.approx(1 / 2)  # the new customer who left is excluded...
    assert f["churn_rate_incl_new"].value == pytest.approx(2 / 2)  # ...and counted here
    assert f["retention_rate"].value == pytest.approx((3 - 1) / 2)
    assert f["growth_rate"].value == pytest.approx((3 - 2) / 2)
    assert f["reactivation_rate"].value == pytest.approx(1 / 1)  # RP / LP: the one who lapsed and returned in March is not in LP


def test_revenue_figures(four_lives):
    f = metrics_for_period(period=MARCH)
    # Over CS: stable spent 50 in February and nothing in March; back-same-month 0 then 50
    assert f["gross_revenue_churn"].value == pytest.approx(50 / 50)
    assert f["net_revenue_churn"].value == pytest.approx((50 - 50) / 50)
    assert f["sales_per_customer"].value == pytest.approx(150 / 3)  # three buyers in March, 50 each
    assert f["repeat_purchase_rate"].value == pytest.approx(2 / 3)  # the new customer's first order is not a repeat
    assert f["revenue"].value == pytest.approx(150)


def test_tenure_clv_and_lost_profit_use_the_margin_setting(four_lives):
    BusinessSettings.objects.update_or_create(pk=1, defaults={"gross_margin": "0.3"})
    f = metrics_for_period(period=MARCH)
    assert f["tenure_lost_days"].value == pytest.approx((90 + 13) / 2)  # lapsed after 90 days; cancelled after 13
    arpa = 150 / 2  # revenue in P / CS
    assert f["historical_clv"].value == pytest.approx(arpa * 0.3 / 0.5)
    assert f["lost_profit"].value == pytest.approx(2 * 0.3 * 150 / 2)  # (L0 + Ln) * margin * revenue / CS


def test_zero_denominators_are_n_a_never_zero(manager_api):
    response = manager_api.get("/api/metrics/?month=2026-03&live=1")
    metrics = response.json()["metrics"]
    for name in ("churn_rate", "churn_rate_incl_new", "retention_rate", "growth_rate", "reactivation_rate",
                 "case_win_rate", "incremental_reactivation", "repeat_purchase_rate", "nps", "csat", "ces",
                 "coupon_redemption_rate", "gross_revenue_churn", "net_revenue_churn", "sales_per_customer",
                 "tenure_lost_days", "historical_clv", "lost_profit"):
        assert metrics[name]["value"] is None, name
    assert metrics["new_customers"]["value"] == 0


def test_survey_scores():
    customer = CustomerFactory()
    for kind, score in [("nps", 10), ("nps", 9), ("nps", 7), ("nps", 3), ("csat", 5), ("csat", 4), ("csat", 2),
                        ("ces", 2), ("ces", 4)]:
        FeedbackFactory(customer=customer, kind=kind, score=score, responded_at=at(2026, 3, 10))
    FeedbackFactory(customer=customer, kind="nps", score=0, responded_at=at(2026, 4, 1, 0))  # April: not in March
    f = metrics_for_period(period=MARCH)
    assert f["nps"].value == pytest.approx(100 * (2 - 1) / 4)
    assert f["csat"].value == pytest.approx(2 / 3)
    assert f["csat_mean"].value == pytest.approx(11 / 3)
    assert f["ces"].value == pytest.approx(3)


def test_coupon_redemption_and_case_win_rate():
    customer = CustomerFactory()
    order = OrderFactory(customer=customer, ordered_at=at(2026, 3, 20))
    Coupon.objects.create(code="A-1", customer=customer, issued_at=at(2026, 3, 1), redeemed_at=at(2026, 3, 20), redeemed_order=order)
    Coupon.objects.create(code="A-2", customer=customer, issued_at=at(2026, 3, 2))
    Coupon.objects.create(code="A-3", customer=customer, issued_at=at(2026, 2, 2), redeemed_at=at(2026, 3, 3))  # February's
    def case(status, closed, **kw):
        c = CustomerFactory()
        return WinbackCase.objects.create(customer=c, lapsed_at=at(2026, 1, 1), opened_at=at(2026, 1, 1), status=status, closed_at=closed, **kw)
    case("won", at(2026, 3, 5)); case("returned", at(2026, 3, 6)); case("lost", at(2026, 3, 7))
    case("void", at(2026, 3, 8)); case("won", at(2026, 4, 2)); case("done", at(2026, 3, 9), kind="care")
    f = metrics_for_period(period=MARCH)
    assert (f["coupon_redemption_rate"].numerator, f["coupon_redemption_rate"].denominator) == (1, 2)
    assert f["case_win_rate"].value == pytest.approx(1 / 3)  # void and care cases are not closed win-back cases


def test_incremental_reactivation_against_the_holdout_with_its_confidence_interval():
    def cases(n, back, holdout):
        for i in range(n):
            WinbackCase.objects.create(customer=CustomerFactory(), lapsed_at=at(2026, 3, 1), opened_at=at(2026, 3, 2),
                                       holdout=holdout, status="won" if i < back and not holdout else ("returned" if i < back else "lost"),
                                       closed_at=at(2026, 4, 1))
    cases(10, 6, holdout=False)
    cases(5, 1, holdout=True)
    f = metrics_for_period(period=MARCH)["incremental_reactivation"]
    assert f.value == pytest.approx(0.6 - 0.2)
    half = 1.959964 * ((0.6 * 0.4 / 10) + (0.2 * 0.8 / 5)) ** 0.5
    assert f.extra["ci95"] == pytest.approx([0.4 - half, 0.4 + half])
    assert f.extra["holdout"] == {"reactivated": 1, "cases": 5, "rate": 0.2}


def test_custom_ranges_quarters_and_the_previous_period():
    q1 = Period(dt.date(2026, 1, 1), dt.date(2026, 4, 1))
    assert q1.previous() == Period(dt.date(2025, 10, 3), dt.date(2026, 1, 1))  # the same 90 days before
    assert MARCH.previous() == month_of(dt.date(2026, 2, 1))


def test_a_quarter_counts_like_a_month(four_lives):
    q1 = metrics_for_period(period=Period(dt.date(2026, 1, 1), dt.date(2026, 4, 1)))
    # At 1 January: stable not yet acquired; back-same-month active; the pool customer had lapsed on 30 Dec
    assert values(q1, "CS", "CN", "L0", "R", "LP", "RP", "CE") == {"CS": 1, "CN": 2, "L0": 1, "R": 2, "LP": 1, "RP": 1, "CE": 3}


def test_every_headline_figure_says_what_went_into_it(four_lives):
    from metrics.services.definitions import HEADLINE

    f = metrics_for_period(period=MARCH)
    assert f["churn_rate"].inputs() == "1 of 2"
    assert f["historical_clv"].inputs() == "ARPA 75.00 x margin 30% / churn 50.0%"
    assert f["lost_profit"].inputs() == "2 lost x 22.50 profit per customer"
    assert all(f[name].definition for name in HEADLINE)
