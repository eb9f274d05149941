"""Hand-built scenarios for the acquisition and order-mix figures of docs/metrics.md section 6 (CAC, CLV:CAC,
CAC payback, cross-sell, up-sell, loyalty share), March 2026, business time zone UTC."""

import datetime as dt
from decimal import Decimal

import pytest

from core.models import BusinessSettings
from metrics.models import MetricSnapshot
from metrics.services.calculators import metrics_compute, metrics_for_period
from metrics.services.periods import Period, month_of
from metrics.services.snapshots import metrics_refresh
from tests.factories import (
    AcquisitionSpendFactory, CustomerFactory, CustomerPredictionFactory, ModelFitFactory, OrderFactory,
    OrderLineFactory,
)
from tests.metrics.conftest import at
from winback.services.lifecycle import lifecycle_scan

pytestmark = pytest.mark.django_db
MARCH = month_of(dt.date(2026, 3, 1))
ACQUISITION = ("cac", "clv_cac_ratio", "clv_cac_ratio_predicted", "cac_payback", "cross_sell_rate", "upsell_rate",
               "loyalty_share")


@pytest.fixture
def march_base(shop):
    """Two customers active at 1 March (one lapses on 5 March) and four acquired in March at 100.00 each."""
    BusinessSettings.objects.update_or_create(pk=1, defaults={"gross_margin": Decimal("0.3")})
    shop.customer(at(2025, 12, 5))  # one order: lapses 90 days later, 5 March (L0)
    shop.customer(at(2026, 2, 15))  # active all March
    new = [shop.customer(at(2026, 3, 2 + i), amount="100.00") for i in range(4)]
    shop.flush()
    lifecycle_scan(full=True, now=at(2026, 4, 2))
    return new


def test_cac_is_the_spend_over_the_new_customers(march_base):
    # given 1000.00 spent in March on acquisition and 4 customers acquired in March
    AcquisitionSpendFactory(month=dt.date(2026, 3, 1), amount=Decimal("1000.00"))
    # when the figures are computed
    f = metrics_for_period(period=MARCH)
    # then CAC = 1000 / 4
    assert f["CN"].value == 4
    assert f["cac"].value == pytest.approx(250)
    assert (f["cac"].numerator, f["cac"].denominator) == (pytest.approx(1000), 4)
    assert f["cac"].inputs() == "spend 1,000.00 over 4 new customers"


def test_a_month_spend_is_its_channels_sum_or_its_all_channels_row(march_base):
    # given March's spend entered per channel only
    AcquisitionSpendFactory(month=dt.date(2026, 3, 1), channel="search", amount=Decimal("600.00"))
    AcquisitionSpendFactory(month=dt.date(2026, 3, 1), channel="social", amount=Decimal("200.00"))
    # then the channels add up: 800 / 4
    assert metrics_for_period(period=MARCH)["cac"].value == pytest.approx(200)
    # when an all-channels total is entered too, it is the month's spend (the channels are its breakdown)
    AcquisitionSpendFactory(month=dt.date(2026, 3, 1), channel="", amount=Decimal("1200.00"))
    assert metrics_for_period(period=MARCH)["cac"].value == pytest.approx(300)


def test_a_range_takes_each_month_spend_in_proportion_to_its_days(march_base):
    # given 3100.00 in March (100 a day) and nothing entered for April
    AcquisitionSpendFactory(month=dt.date(2026, 3, 1), amount=Decimal("3100.00"))
    # when the period is 1-10 March (10 of March's 31 days; the four are acquired 2-5 March)
    f = metrics_for_period(period=Period(dt.date(2026, 3, 1), dt.date(2026, 3, 11)))
    # then the spend is 1000 and CAC 250
    assert f["cac"].numerator == pytest.approx(1000)
    assert f["cac"].value == pytest.approx(250)


def test_clv_to_cac_and_payback(march_base):
    # given margin 30%, CS = 2 with one lapse (churn 1/2), March revenue 400 (the four new customers' orders)
    AcquisitionSpendFactory(month=dt.date(2026, 3, 1), amount=Decimal("1000.00"))
    f = metrics_for_period(period=MARCH)
    # then ARPA = 400 / 2 = 200, historical CLV = 200 * 0.3 / 0.5 = 120, CAC = 250
    assert f["historical_clv"].value == pytest.approx(120)
    assert f["clv_cac_ratio"].value == pytest.approx(120 / 250)
    # payback = CAC / (ARPA * margin) = 250 / 60 months
    assert f["cac_payback"].value == pytest.approx(250 / 60)
    assert f["cac_payback"].inputs() == "CAC 250.00 / (ARPA 200.00 x margin 30%)"
    # no prediction yet: the predicted ratio is n/a, and its card says why
    assert f["clv_cac_ratio_predicted"].value is None
    assert f["clv_cac_ratio_predicted"].inputs() == (
        "no new customer of the period has a predicted CLV (no usable purchase-model fit yet)")


def test_predicted_clv_to_cac_uses_the_new_customers_with_a_prediction(march_base):
    # given two of the four new customers predicted 300 and 500 by a usable fit, and CAC 250
    AcquisitionSpendFactory(month=dt.date(2026, 3, 1), amount=Decimal("1000.00"))
    fit = ModelFitFactory()
    CustomerPredictionFactory(customer=march_base[0], fit=fit, predicted_clv_12m=Decimal("300.00"))
    CustomerPredictionFactory(customer=march_base[1], fit=fit, predicted_clv_12m=Decimal("500.00"))
    # a customer acquired before March with a prediction does not count
    CustomerPredictionFactory(customer=CustomerFactory(), fit=fit, predicted_clv_12m=Decimal("9000.00"))
    f = metrics_for_period(period=MARCH)["clv_cac_ratio_predicted"]
    # then (300 + 500) / 2 / 250
    assert f.value == pytest.approx(400 / 250)
    assert f.extra["predicted_customers"] == 2


def test_no_spend_entered_makes_cac_and_what_builds_on_it_n_a(march_base):
    # given no spend for March (only for February)
    AcquisitionSpendFactory(month=dt.date(2026, 2, 1), amount=Decimal("500.00"))
    f = metrics_for_period(period=MARCH)
    # then
    for name in ("cac", "clv_cac_ratio", "clv_cac_ratio_predicted", "cac_payback"):
        assert f[name].value is None, name
    assert f["cac"].inputs() == "no acquisition spend entered for the period"


def test_no_new_customers_makes_cac_n_a(shop):
    # given spend in March but nobody acquired in it
    shop.customer(at(2026, 2, 15))
    shop.flush()
    lifecycle_scan(full=True, now=at(2026, 4, 2))
    AcquisitionSpendFactory(month=dt.date(2026, 3, 1), amount=Decimal("1000.00"))
    f = metrics_for_period(period=MARCH)
    # then CN = 0: n/a, not infinity
    assert f["CN"].value == 0
    assert f["cac"].value is None
    assert f["cac_payback"].value is None


def _order(customer, when, categories, amount="10.00"):
    """An order with one line per category (None: an order without lines; "": a line of unknown category)."""
    order = OrderFactory(customer=customer, ordered_at=when, amount=Decimal(amount) * max(len(categories or []), 1))
    for position, category in enumerate(categories or [], start=1):
        OrderLineFactory(order=order, position=position, category=category, amount=Decimal(amount))
    return order


def test_cross_sell_counts_previous_buyers_who_bought_a_new_category():
    # given customers who ordered in March: (date, categories) of their orders; None: an order without lines
    histories = [
        [(at(2026, 2, 1), ["books"]), (at(2026, 3, 5), ["books", "toys"])],  # new in March: toys
        [(at(2026, 2, 1), ["books"]), (at(2026, 3, 5), ["books"])],  # nothing new
        [(at(2026, 2, 1), None), (at(2026, 3, 5), ["toys"])],  # no lines before: not a previous buyer
        [(at(2026, 2, 1), ["books"]), (at(2026, 3, 5), None)],  # no lines in March: unknown, not counted
        [(at(2026, 2, 1), ["books"]), (at(2026, 3, 5), [""])],  # a line of unknown category: not counted
        [(at(2026, 3, 5), ["games"])],  # first order ever: not a previous buyer
        [(at(2026, 1, 9), ["books"]), (at(2026, 3, 9), ["toys", "games"])],  # new in March: toys and games
    ]
    for history in histories:
        customer = CustomerFactory()
        for when, categories in history:
            _order(customer, when, categories)
    # when
    f = metrics_for_period(period=MARCH)["cross_sell_rate"]
    # then previous buyers with a known category in March: the 1st, 2nd and last; the 1st and last bought a new one
    assert (f.numerator, f.denominator) == (2, 3)
    assert f.value == pytest.approx(2 / 3)
    assert f.extra["by_category"] == [{"category": "toys", "customers": 2}, {"category": "games", "customers": 1}]


def test_cross_sell_is_n_a_without_order_lines():
    # given orders before and in March, none with lines
    customer = CustomerFactory()
    _order(customer, at(2026, 2, 1), None)
    _order(customer, at(2026, 3, 1), None)
    # then no previous buyer with lines: n/a, and no category
    f = metrics_for_period(period=MARCH)["cross_sell_rate"]
    assert f.value is None
    assert f.extra["by_category"] == []


def test_upsell_counts_a_mean_order_value_at_least_the_threshold_above():
    # given the 12 months before March (1 March 2025 - 28 February 2026) and March itself
    exactly_20 = CustomerFactory()
    for when, amount in ((at(2025, 6, 1), "100.00"), (at(2025, 9, 1), "100.00"), (at(2026, 3, 3), "120.00")):
        OrderFactory(customer=exactly_20, ordered_at=when, amount=Decimal(amount))
    just_under = CustomerFactory()
    for when, amount in ((at(2025, 6, 1), "100.00"), (at(2026, 3, 3), "119.99")):
        OrderFactory(customer=just_under, ordered_at=when, amount=Decimal(amount))
    means = CustomerFactory()  # mean 100 before (50, 150), 120 in March (130, 110)
    for when, amount in ((at(2025, 4, 1), "50.00"), (at(2026, 2, 27), "150.00"), (at(2026, 3, 3), "130.00"),
                         (at(2026, 3, 30), "110.00")):
        OrderFactory(customer=means, ordered_at=when, amount=Decimal(amount))
    lower = CustomerFactory()
    for when, amount in ((at(2025, 3, 2), "100.00"), (at(2026, 3, 3), "50.00")):
        OrderFactory(customer=lower, ordered_at=when, amount=Decimal(amount))
    OrderFactory(customer=CustomerFactory(), ordered_at=at(2026, 3, 3), amount=Decimal("500.00"))  # new: not counted
    too_old = CustomerFactory()  # the earlier order is 13 months before: outside the window
    for when, amount in ((at(2025, 2, 27), "10.00"), (at(2026, 3, 3), "500.00")):
        OrderFactory(customer=too_old, ordered_at=when, amount=Decimal(amount))
    # when the threshold is the default 20%
    f = metrics_for_period(period=MARCH)["upsell_rate"]
    # then exactly_20 and means of the four who ordered in both
    assert (f.numerator, f.denominator) == (2, 4)
    assert f.extra["threshold"] == pytest.approx(0.2)
    # when the threshold is 25%, nobody
    BusinessSettings.objects.update_or_create(pk=1, defaults={"upsell_threshold": Decimal("0.25")})
    assert metrics_for_period(period=MARCH)["upsell_rate"].value == 0


def test_upsell_is_n_a_without_previous_buyers():
    # given only first orders in March
    OrderFactory(customer=CustomerFactory(), ordered_at=at(2026, 3, 3))
    assert metrics_for_period(period=MARCH)["upsell_rate"].value is None


def test_loyalty_share_of_the_customers_active_at_the_end(shop):
    # given at E = 1 April 2026 (window 1 April 2025 - 31 March 2026)
    shop.customer(at(2025, 6, 10), at(2025, 10, 10), at(2026, 3, 10))  # 3 orders in the window, active: loyal
    shop.customer(at(2025, 3, 10), at(2025, 10, 10), at(2026, 3, 10))  # only 2 in the window, active
    shop.customer(at(2026, 1, 1), at(2026, 2, 1), at(2026, 3, 1))  # 3 orders, active (rhythm ~29 days x 3)
    shop.customer(at(2025, 5, 1), at(2025, 5, 2), at(2025, 5, 3))  # 3 orders but lapsed in May 2025: not in CE
    shop.flush()
    lifecycle_scan(full=True, now=at(2026, 4, 2))
    f = metrics_for_period(period=MARCH)
    # then 2 loyal of CE = 3
    assert f["CE"].value == 3
    assert (f["loyalty_share"].numerator, f["loyalty_share"].denominator) == (2, 3)


def test_loyalty_share_is_n_a_with_nobody_active():
    assert metrics_for_period(period=MARCH)["loyalty_share"].value is None


def test_several_months_at_once_give_each_month_its_own_figures(march_base):
    # given spend in February and March; nobody acquired in February
    AcquisitionSpendFactory(month=dt.date(2026, 2, 1), amount=Decimal("400.00"))
    AcquisitionSpendFactory(month=dt.date(2026, 3, 1), amount=Decimal("1000.00"))
    february = month_of(dt.date(2026, 2, 1))
    # when both are computed in one pass
    out = metrics_compute(periods=[february, MARCH])
    # then
    assert out[MARCH]["cac"].value == pytest.approx(250)
    assert out[february]["CN"].value == 1  # the customer of 15 February
    assert out[february]["cac"].value == pytest.approx(400)


def test_a_snapshot_stores_them_and_the_api_returns_them_with_their_definition(march_base, manager_api):
    # given spend for March
    AcquisitionSpendFactory(month=dt.date(2026, 3, 1), amount=Decimal("1000.00"))
    # when March is refreshed
    metrics_refresh(periods=[MARCH])
    # then every new figure is stored
    stored = {row.metric: row for row in MetricSnapshot.objects.filter(start=MARCH.start, end=MARCH.end,
                                                                       metric__in=ACQUISITION)}
    assert set(stored) == set(ACQUISITION)
    assert float(stored["cac"].value) == pytest.approx(250)
    assert stored["cross_sell_rate"].extra == {"by_category": []}
    # and the API reads them from the snapshot with their definitions
    response = manager_api.get("/api/metrics/?month=2026-03")
    assert response.status_code == 200
    metrics = response.json()["metrics"]
    assert metrics["cac"]["value"] == pytest.approx(250)
    assert metrics["cac"]["definition"].startswith("acquisition spend in P / CN")
    assert metrics["clv_cac_ratio"]["value"] == pytest.approx(120 / 250)
    assert metrics["cac_payback"]["unit"] == "periods"
    for name in ACQUISITION:
        assert metrics[name]["label"] and metrics[name]["definition"], name
    # and the series, month by month (February live: nothing acquired, no spend)
    series = manager_api.get("/api/metrics/series/?metric=cac&start=2026-02-01&end=2026-04-01").json()
    assert series["unit"] == "money" and series["definition"].startswith("acquisition spend in P / CN")
    assert [(p["period"], p["value"]) for p in series["points"]] == [("2026-02", None), ("2026-03", pytest.approx(250))]


def test_the_kpi_page_shows_the_cards_and_the_cross_sell_table(march_base, client, manager):
    # given spend, and a March customer who had bought books in February and buys toys in March
    AcquisitionSpendFactory(month=dt.date(2026, 3, 1), amount=Decimal("1000.00"))
    buyer = CustomerFactory()
    _order(buyer, at(2026, 2, 1), ["books"])
    _order(buyer, at(2026, 3, 9), ["toys"])
    # when a manager opens March's KPIs
    client.force_login(manager)
    page = client.get("/admin/metrics/metricsnapshot/", {"month": "2026-03"}).content.decode()
    # then every new figure has its card, and the table its row (the category isolated as data)
    for name in ACQUISITION:
        assert f'data-metric="{name}"' in page, name
    assert 'id="kpi-cross-sell-table"' in page
    assert '<tr data-category="toys"><td><bdi>toys</bdi></td><td>1</td>' in page
    assert "spend 1,000.00 over 4 new customers" in page


def test_the_upsell_threshold_is_bounded_in_the_form_and_the_database():
    from django.core.exceptions import ValidationError
    from django.db import IntegrityError, transaction

    # given the settings row with its default threshold
    row = BusinessSettings.objects.get_or_create(pk=1)[0]
    assert row.upsell_threshold == Decimal("0.2")
    # then a threshold above 10 (1000% more) is refused by validation and by the CHECK constraint
    row.upsell_threshold = Decimal("10.5")
    with pytest.raises(ValidationError):
        row.full_clean()
    with pytest.raises(IntegrityError), transaction.atomic():
        BusinessSettings.objects.filter(pk=1).update(upsell_threshold=Decimal("-0.1"))
