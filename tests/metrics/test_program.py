"""Agent and program figures (docs/metrics.md section 5) and reasons for leaving, hand-built."""

import datetime as dt
from decimal import Decimal

import pytest

from crm.models import Contact
from metrics.services.periods import month_of, months_between
from metrics.services.program import agent_table, reasons_table
from metrics.services.snapshots import metrics_refresh
from tests.factories import CustomerFactory, OrderFactory, UserFactory
from tests.metrics.conftest import at
from winback.models import Coupon, Disposition, LeaveReason, WinbackCase

pytestmark = pytest.mark.django_db
MARCH = month_of(dt.date(2026, 3, 1))


def call(case, agent, when, outcome, **fields):
    contact = Contact.objects.create(customer=case.customer, channel="call", occurred_at=when, agent=agent, outcome=outcome)
    return Disposition.objects.create(case=case, agent=agent, contact=contact, outcome=outcome, created_at=when, **fields)


def build_march() -> None:
    """Ana wins a case after a kept callback and a redeemed coupon; Ben hears "price" and misses a callback."""
    ana, ben = UserFactory(username="ana"), UserFactory(username="ben")
    won_customer = CustomerFactory()
    won = WinbackCase.objects.create(customer=won_customer, lapsed_at=at(2026, 2, 1), opened_at=at(2026, 2, 1))
    call(won, ana, at(2026, 3, 3), "no_answer")
    call(won, ana, at(2026, 3, 4), "callback_requested", callback_at=at(2026, 3, 6, 10))
    order = OrderFactory(customer=won_customer, ordered_at=at(2026, 3, 10), amount=Decimal("80.00"))
    coupon = Coupon.objects.create(code="BACK-1", customer=won_customer, case=won, issued_at=at(2026, 3, 6, 10),
                                   redeemed_at=at(2026, 3, 10), redeemed_order=order)
    call(won, ana, at(2026, 3, 6, 10) + dt.timedelta(minutes=5), "reached_will_return", coupon=coupon)
    OrderFactory(customer=won_customer, ordered_at=at(2026, 3, 20), amount=Decimal("40.00"))  # inside the window
    OrderFactory(customer=won_customer, ordered_at=at(2026, 5, 20), amount=Decimal("99.00"))  # after it
    WinbackCase.objects.filter(pk=won.pk).update(status="won", closed_at=at(2026, 3, 10), reactivation_order=order)
    declined = WinbackCase.objects.create(customer=CustomerFactory(), lapsed_at=at(2026, 2, 1), opened_at=at(2026, 2, 1))
    call(declined, ben, at(2026, 3, 5), "reached_declined", reason=LeaveReason.objects.get(name="Price"))
    call(declined, ben, at(2026, 2, 27), "no_answer")  # February: not in March's figures
    missed = WinbackCase.objects.create(customer=CustomerFactory(), lapsed_at=at(2026, 2, 1), opened_at=at(2026, 2, 1))
    call(missed, ben, at(2026, 3, 7), "callback_requested", callback_at=at(2026, 3, 9, 15))  # never called back


def test_the_agent_table_and_the_reasons():
    build_march()
    rows = {r["agent"]: r for r in agent_table(period=MARCH)}
    assert rows["ana"] == {"agent": "ana", "cases_worked": 1, "contacts": 3, "reach_rate": pytest.approx(2 / 3),
                           "callbacks_due": 1, "callbacks_kept": 1, "offers": 1, "redemptions": 1, "wins": 1,
                           "reactivated_revenue": pytest.approx(120.0),
                           "conversion": None}
    assert rows["ben"] == {"agent": "ben", "cases_worked": 2, "contacts": 2, "reach_rate": pytest.approx(1.0),
                           "callbacks_due": 1, "callbacks_kept": 0, "offers": 0, "redemptions": 0, "wins": 0,
                           "reactivated_revenue": 0, "conversion": None}
    assert rows["Team"]["contacts"] == 5 and rows["Team"]["reach_rate"] == pytest.approx(4 / 5)
    assert rows["Team"]["wins"] == 1 and rows["Team"]["callbacks_kept"] == 1

    reasons = reasons_table(period=MARCH)
    assert reasons["rows"] == [{"reason": "Price", "count": 1, "share": 1.0}]
    assert reasons["months"][-1] == "2026-03" and reasons["trend"]["Price"][-1] == 1


def test_a_period_without_calls_has_empty_tables():
    assert agent_table(period=MARCH) == []
    assert reasons_table(period=MARCH)["rows"] == [] and reasons_table(period=MARCH)["total"] == 0


def test_a_refreshed_month_serves_its_tables_from_the_snapshot_equal_to_live():
    # given March's calls and the six months up to March refreshed
    build_march()
    metrics_refresh(periods=months_between(dt.date(2025, 10, 1), dt.date(2026, 4, 1)))
    # then the stored tables are the live ones
    assert agent_table(period=MARCH) == agent_table(period=MARCH, live=True)
    assert reasons_table(period=MARCH) == reasons_table(period=MARCH, live=True)
    assert {r["agent"] for r in agent_table(period=MARCH)} == {"ana", "ben", "Team"}
    # when a call is recorded after the refresh, the page keeps the snapshot until the next refresh
    late = WinbackCase.objects.create(customer=CustomerFactory(), lapsed_at=at(2026, 2, 1), opened_at=at(2026, 2, 1))
    call(late, UserFactory(username="cy"), at(2026, 3, 30), "reached_declined", reason=LeaveReason.objects.get(name="Price"))
    assert "cy" not in {r["agent"] for r in agent_table(period=MARCH)}
    assert reasons_table(period=MARCH)["total"] == 1 and reasons_table(period=MARCH, live=True)["total"] == 2
    # and the next refresh of March replaces its tables
    metrics_refresh(periods=[MARCH])
    assert agent_table(period=MARCH) == agent_table(period=MARCH, live=True)
    assert "cy" in {r["agent"] for r in agent_table(period=MARCH)}
    assert reasons_table(period=MARCH) == reasons_table(period=MARCH, live=True)
    assert reasons_table(period=MARCH)["trend"]["Price"][-1] == 2
