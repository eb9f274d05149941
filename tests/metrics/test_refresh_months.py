"""The refresh's months (metrics/services/monthly.py) against the one-period statements where its SQL takes
shortcuts: an order's month from the month starts (not date_part), up-sell's comparison in bigint while it
cannot overflow (numeric beyond)."""

import datetime as dt
from decimal import Decimal

import pytest

from metrics.services.calculators import metrics_compute
from metrics.services.monthly import months_compute
from metrics.services.periods import month_of
from tests.factories import CustomerFactory, OrderFactory
from tests.metrics.conftest import at

pytestmark = pytest.mark.django_db

JAN, FEB, MAR = (month_of(dt.date(2025, m, 1)) for m in (1, 2, 3))


@pytest.mark.parametrize(("zone", "expected"), [
    # 31 Jan 12:00 UTC is 1 Feb in Auckland (UTC+13), 31 Jan in Los Angeles (UTC-8); 1 Mar 05:00 UTC is
    # 1 Mar in Auckland, 28 Feb in Los Angeles.
    ("Pacific/Auckland", {JAN: ("10.00", 1), FEB: ("20.00", 1), MAR: ("40.00", 1)}),
    ("America/Los_Angeles", {JAN: ("30.00", 1), FEB: ("40.00", 1), MAR: ("0", 0)}),
])
def test_an_order_counts_in_its_month_in_the_business_time_zone(settings, shop, zone, expected):
    settings.TIME_ZONE = zone
    # Given one customer's orders near month ends in UTC
    customer = shop.customer(at(2025, 1, 10), amount="10.00")
    shop.order(customer, at(2025, 1, 31), "20.00")
    shop.order(customer, dt.datetime(2025, 3, 1, 5, tzinfo=dt.timezone.utc), "40.00")
    shop.flush()
    # When the three months are computed the refresh's way, and each on its own
    months = months_compute(months=[JAN, FEB, MAR])
    for month, (revenue, buyers) in expected.items():
        single = metrics_compute(periods=[month])[month]
        # Then the orders fall in their local months, in both
        assert months[month]["revenue"].value == pytest.approx(float(revenue)), (zone, month)
        assert months[month]["sales_per_customer"].denominator == buyers, (zone, month)
        assert single["revenue"].value == months[month]["revenue"].value, (zone, month)
        assert single["repeat_purchase_rate"].value == months[month]["repeat_purchase_rate"].value, (zone, month)


def test_upsell_is_the_same_in_the_refresh_at_the_threshold_and_for_amounts_beyond_bigint_shortcuts():
    # Given customers at exactly the 20% threshold and just under it, with small amounts and with monthly
    # sums beyond 2^31 cents (the refresh compares those in numeric)
    for before, march in (("100.00", "120.00"), ("100.00", "119.99"), ("30000000.00", "36000000.00"),
                          ("30000000.00", "35999999.99"), ("9999999999.99", "9999999999.99")):
        customer = CustomerFactory()
        OrderFactory(customer=customer, ordered_at=at(2025, 6, 1), amount=Decimal(before))
        OrderFactory(customer=customer, ordered_at=at(2026, 3, 3), amount=Decimal(march))
    # When March is computed the refresh's way (with February) and on its own
    march, february = month_of(dt.date(2026, 3, 1)), month_of(dt.date(2026, 2, 1))
    refresh = months_compute(months=[february, march])[march]["upsell_rate"]
    single = metrics_compute(periods=[march])[march]["upsell_rate"]
    # Then both count the two at the threshold of the five who ordered before
    assert (refresh.numerator, refresh.denominator) == (single.numerator, single.denominator) == (2, 5)
