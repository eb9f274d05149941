import datetime as dt
import threading

import pytest
from django.db import connection
from django.utils import timezone

from crm.models import Customer
from crm.services.audit import SYSTEM
from crm.services.customers import customer_cancel
from crm.services.records import complaint_create, contact_create
from tests.winback.conftest import add_orders, customer_with_orders, day
from winback.models import Coupon, LifecycleEvent, WinbackCase
from winback.services.lifecycle import lifecycle_refresh, lifecycle_scan
from winback.services.policy import policy_change, policy_current

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def rhythm_rule(db):
    """These tests are about the rhythm rule (docs/metrics.md s.1); a fresh install starts with the window."""
    policy_change(user=None, values={"rule": "rhythm"}, note="the rhythm rule under test")


def events_of(customer: Customer) -> list[tuple[str, dt.datetime]]:
    return list(LifecycleEvent.objects.filter(customer=customer).order_by("occurred_at", "kind").values_list("kind", "occurred_at"))


def snapshot() -> tuple:
    return (
        sorted(LifecycleEvent.objects.values_list("customer_id", "kind", "occurred_at")),
        sorted(WinbackCase.objects.values_list("customer_id", "lapse_event_id", "status", "holdout")),
        sorted(Customer.objects.values_list("id", "status")),
    )


def test_a_one_time_buyer_lapses_after_default_days_and_gets_one_case(make_customer):
    # Given a customer with one order on day 0
    customer = make_customer([0])
    # When the engine runs on day 100
    lifecycle_scan(full=True, now=day(100))
    # Then: acquired at the order, at risk at 45 days, lapsed at 90 days (dated at the crossings)
    assert events_of(customer) == [("acquired", day(0)), ("at_risk", day(45)), ("lapsed", day(90))]
    customer.refresh_from_db()
    assert customer.status == "lapsed"
    case = WinbackCase.objects.get(customer=customer)
    assert (case.status, case.lapsed_at, case.lapse_event.kind) == ("open", day(90), "lapsed")


def test_a_regular_customer_lapses_after_three_missed_cycles(make_customer):
    # Orders every 10 days: the mean gap is 10, so at risk after 15 days and lapsed after 30.
    customer = make_customer([0, 10, 20, 30])
    lifecycle_scan(full=True, now=day(200))
    assert events_of(customer)[-2:] == [("at_risk", day(45)), ("lapsed", day(60))]


def test_an_order_after_the_at_risk_crossing_makes_the_customer_active_again(make_customer):
    # Given a one-time buyer who turned at risk on day 45 (default 90 days, at_risk_k / k = 1.5 / 3)
    customer = make_customer([0])
    lifecycle_scan(full=True, now=day(50))
    customer.refresh_from_db()
    assert customer.status == "at_risk"
    # When they order again on day 60, before the lapse, and the engine runs
    add_orders(customer, [60])
    lifecycle_refresh(customer_ids=[customer.pk], now=day(61))
    # Then they are active again (at risk ended with the order, which is no event of its own) ...
    customer.refresh_from_db()
    assert customer.status == "active"
    assert events_of(customer) == [("acquired", day(0)), ("at_risk", day(45))]
    # ... and turn at risk anew only when the rule says so again, from the new order (90 days after day 60: 45)
    lifecycle_scan(full=True, now=day(106))
    customer.refresh_from_db()
    assert (customer.status, events_of(customer)[-1]) == ("at_risk", ("at_risk", day(105)))


def test_rerunning_and_running_late_give_the_same_events_and_cases(make_customer):
    for days in ([0], [0, 10, 20, 30], [0, 5, 200, 210, 215], [0, 30, 60, 90, 120, 150, 180]):
        make_customer(days)
    # Given weekly incremental scans from day 0 up to day 300
    for n in [*range(0, 300, 7), 300]:
        lifecycle_scan(now=day(n))
    daily = snapshot()
    # When everything is rebuilt by one late full scan, and then run again twice
    lifecycle_scan(full=True, now=day(300))
    lifecycle_scan(full=True, now=day(300))
    lifecycle_scan(now=day(300))
    # Then nothing differs
    assert snapshot() == daily
    assert WinbackCase.objects.filter(status="open").count() == Customer.objects.filter(status__in=["lapsed"]).count()


def test_incremental_scan_touches_only_changed_or_due_customers(make_customer):
    steady = make_customer([0, 10, 20])
    other = make_customer([0, 10, 20])
    assert lifecycle_scan(full=True, now=day(21)).customers == 2
    # Nothing changed and nothing came due: nobody is looked at.
    assert lifecycle_scan(now=day(22)).customers == 0
    # A new order for one customer: only that one.
    add_orders(other, [22])
    assert lifecycle_scan(now=day(23)).customers == 1
    # The steady customer's at-risk crossing (day 35) comes due, the other's (day 36) not yet.
    result = lifecycle_scan(now=day(35.5))
    assert result.customers == 1
    assert ("at_risk", day(35)) in events_of(steady)
    steady.refresh_from_db()
    assert steady.status == "at_risk"


def test_an_order_on_the_crossing_instant_is_in_time(make_customer):
    customer = make_customer([0, 90])
    lifecycle_scan(full=True, now=day(100))
    kinds = [k for k, _ in events_of(customer)]
    assert "lapsed" not in kinds and "reactivated" not in kinds


def test_a_reactivating_order_closes_the_case_as_returned_without_a_contact(make_customer):
    customer = make_customer([0])
    lifecycle_scan(full=True, now=day(100))
    add_orders(customer, [120])
    lifecycle_scan(now=day(121))
    case = WinbackCase.objects.get(customer=customer)
    assert (case.status, case.closed_at, case.reactivation_order.ordered_at) == ("returned", day(120), day(120))
    assert ("reactivated", day(120)) in events_of(customer)
    customer.refresh_from_db()
    assert customer.status == "active"


def test_a_reactivating_order_after_a_contact_in_the_window_wins_the_case(make_customer):
    won, too_early, inbound = make_customer([0]), make_customer([0]), make_customer([0])
    lifecycle_scan(full=True, now=day(100))
    contact_create(actor=SYSTEM, data={"customer": won, "channel": "call", "direction": "outbound", "occurred_at": day(101), "outcome": "reached_will_return"})
    contact_create(actor=SYSTEM, data={"customer": too_early, "channel": "call", "direction": "outbound", "occurred_at": day(95), "outcome": "reached_will_return"})
    contact_create(actor=SYSTEM, data={"customer": inbound, "channel": "call", "direction": "inbound", "occurred_at": day(101)})
    for customer in (won, too_early, inbound):
        add_orders(customer, [130])  # 29 days after day 101; 35 after day 95
    lifecycle_scan(now=day(131))
    assert WinbackCase.objects.get(customer=won).status == "won"
    assert WinbackCase.objects.get(customer=too_early).status == "returned"
    assert WinbackCase.objects.get(customer=inbound).status == "returned"


def test_a_redeemed_coupon_of_the_case_wins_it_and_is_linked(make_customer):
    customer = make_customer([0])
    lifecycle_scan(full=True, now=day(100))
    case = WinbackCase.objects.get(customer=customer)
    coupon = Coupon.objects.create(code="BACK-123", customer=customer, case=case, issued_at=day(60))
    add_orders(customer, [150], coupon="BACK-123")  # issued long before, but redeemed by this very order
    lifecycle_scan(now=day(151))
    case.refresh_from_db()
    coupon.refresh_from_db()
    assert case.status == "won"
    assert coupon.redeemed_order == case.reactivation_order
    assert coupon.redeemed_at == day(150)


def test_an_open_complaint_marks_a_recovery_call_with_a_higher_priority(make_customer):
    calm, angry = make_customer([0, 100]), make_customer([0, 100])
    complaint_create(actor=SYSTEM, data={"customer": angry, "opened_at": day(101), "summary": "Broken"})
    lifecycle_scan(full=True, now=day(300))
    calm_case, angry_case = WinbackCase.objects.get(customer=calm), WinbackCase.objects.get(customer=angry)
    assert (calm_case.is_recovery, angry_case.is_recovery) == (False, True)
    assert calm_case.revenue_12m == angry_case.revenue_12m > 0
    assert angry_case.priority == 2 * calm_case.priority


def test_a_cancellation_is_a_lapse_at_its_date_and_opens_a_case(make_customer):
    customer = make_customer([0, 10, 20])
    customer_cancel(actor=SYSTEM, customer=customer, cancelled_at=day(25))
    lifecycle_scan(full=True, now=day(26))
    assert events_of(customer)[-1] == ("cancelled", day(25))
    assert WinbackCase.objects.get(customer=customer).lapsed_at == day(25)


def test_a_policy_change_rebuilds_and_voids_cases_no_longer_lapsed(make_customer):
    customer = make_customer([0])
    lifecycle_scan(full=True, now=day(100))
    assert WinbackCase.objects.get(customer=customer).status == "open"
    # When a manager gives new customers 120 days instead of 90
    policy_change(user=None, values={"default_days": 120}, note="longer for new customers")
    result = lifecycle_scan(now=day(100))  # an ordinary scan sees the new version and rebuilds
    # Then the lapse is gone, the case is void, and the at-risk event moved to day 60
    assert result.full and result.policy_version == policy_current().pk
    assert events_of(customer) == [("acquired", day(0)), ("at_risk", day(60))]
    case = WinbackCase.objects.get(customer=customer)
    assert case.status == "void" and case.lapse_event is None


def test_refresh_after_new_orders_closes_the_case_at_once(make_customer):
    customer = make_customer([0])
    lifecycle_scan(full=True, now=day(100))
    add_orders(customer, [101])
    lifecycle_refresh(customer_ids=[customer.pk], now=day(101))
    assert WinbackCase.objects.get(customer=customer).status == "returned"


def test_holdout_share_is_respected_and_never_changes(make_customer):
    # Given 10,000 one-time buyers who all lapse
    from crm.services.orders import OrderInput, orders_insert
    from decimal import Decimal
    Customer.objects.bulk_create([Customer(external_id=f"HOLD{i}", name="H") for i in range(10_000)], batch_size=2000)
    items = [OrderInput(f"HO{i}", f"HOLD{i}", day(0), Decimal("20.00"), "EUR") for i in range(10_000)]
    for i in range(0, 10_000, 5000):
        orders_insert(actor=SYSTEM, items=items[i:i + 5000], all_or_nothing=True)
    # When the engine opens their cases
    lifecycle_scan(full=True, now=day(100))
    holdout = dict(WinbackCase.objects.values_list("id", "holdout"))
    # Then about 10% are held out (within 4 standard deviations: sd = sqrt(10000 * 0.1 * 0.9) = 30)
    assert len(holdout) == 10_000
    assert abs(sum(holdout.values()) - 1000) <= 120
    # And the draw is stored: another full scan changes nobody's assignment
    lifecycle_scan(full=True, now=day(101))
    assert dict(WinbackCase.objects.values_list("id", "holdout")) == holdout


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_scans_create_no_duplicate_events_or_cases():
    customers = [customer_with_orders(days) for days in ([0], [0, 10, 20], [0, 50], [0, 5, 10, 15, 20]) * 10]
    errors: list[BaseException] = []

    def scan(full: bool) -> None:
        try:
            lifecycle_scan(full=full, now=day(400), batch_size=7)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=scan, args=(full,)) for full in (True, True, False, False)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    total = LifecycleEvent.objects.count()
    distinct = len(set(LifecycleEvent.objects.values_list("customer_id", "kind", "occurred_at")))
    assert total == distinct
    assert WinbackCase.objects.count() == len(customers)  # every one of them is lapsed on day 400, once
    assert WinbackCase.objects.values("customer").distinct().count() == len(customers)
    before = snapshot()
    lifecycle_scan(full=True, now=day(400))
    assert snapshot() == before
