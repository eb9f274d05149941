import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm.models import Customer
from crm.services.audit import SYSTEM
from crm.services.customers import customer_cancel, customer_create
from crm.services.orders import OrderInput, orders_insert
from tests.winback.reference import reference_events, thresholds
from winback.models import LifecycleEvent
from winback.services.lifecycle import lifecycle_refresh, lifecycle_scan
from winback.services.policy import policy_change, policy_current

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def rhythm_rule(db):
    """These tests are about the rhythm rule (docs/metrics.md s.1); a fresh install starts with the window."""
    policy_change(user=None, values={"rule": "rhythm"}, note="the rhythm rule under test")
BASE = dt.datetime(2023, 1, 1, tzinfo=dt.timezone.utc)
NOW = BASE + dt.timedelta(days=1200)
POLICY = {"k": Decimal("3.00"), "at_risk_k": Decimal("1.50"), "min_orders": 3, "default_days": 90, "min_days": 14, "max_days": 365}

# Gaps between orders: same instant, bursts within a day, weekly-ish, quarterly-ish, long breaks.
gaps = st.one_of(
    st.just(0),
    st.integers(1, 86_400),
    st.integers(86_400, 20 * 86_400),
    st.integers(20 * 86_400, 120 * 86_400),
    st.integers(120 * 86_400, 500 * 86_400),
)
history = st.fixed_dictionaries({
    "first": st.integers(0, 400 * 86_400),
    "gaps": st.lists(gaps, min_size=0, max_size=12),
    "contract_start_before": st.one_of(st.none(), st.integers(0, 200 * 86_400)),
    "cancellations": st.lists(st.integers(0, 1300 * 86_400), max_size=2),
    "on_the_crossing": st.booleans(),  # add an order exactly at the last order's lapse crossing
    "extension": st.lists(gaps, max_size=4),  # orders that arrive after a first run
})

counter = iter(range(10**9))


def build_orders(h: dict) -> list[dt.datetime]:
    t = BASE + dt.timedelta(seconds=h["first"])
    orders = [t]
    for gap in h["gaps"]:
        t += dt.timedelta(seconds=gap)
        orders.append(t)
    if h["on_the_crossing"]:
        lapse_thr, _ = thresholds(POLICY, orders, len(orders))
        orders.append(orders[-1] + lapse_thr)
    return orders


def add_orders(customer: Customer, times: list[dt.datetime]) -> None:
    items = [OrderInput(f"P{next(counter)}", customer.external_id, t, Decimal("10.00"), "EUR") for t in times]
    orders_insert(actor=SYSTEM, items=items, all_or_nothing=True)


def stored_events(customer: Customer) -> set[tuple[str, dt.datetime]]:
    return set(LifecycleEvent.objects.filter(customer=customer).values_list("kind", "occurred_at"))


def make_customer(h: dict, orders: list[dt.datetime]) -> tuple[Customer, list[dt.datetime]]:
    acquired = None
    if h["contract_start_before"] is not None:
        acquired = orders[0] - dt.timedelta(seconds=h["contract_start_before"])
    customer, _ = customer_create(actor=SYSTEM, data={"external_id": f"H{next(counter)}", "name": "H", "acquired_at": acquired})
    add_orders(customer, orders)
    start = min(orders[0], acquired or orders[0])
    cancellations = [start + dt.timedelta(seconds=s) for s in h["cancellations"]]
    for c in cancellations:
        customer_cancel(actor=SYSTEM, customer=customer, cancelled_at=c)
    customer.refresh_from_db()
    return customer, cancellations


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(h=history)
def test_engine_agrees_with_the_reference_on_random_histories(h):
    # Given a random order history (and maybe a contract start and cancellations)
    orders = build_orders(h)
    customer, cancellations = make_customer(h, orders)
    policy_current()

    # When the engine runs, then its events are the reference's, to the microsecond
    lifecycle_refresh(customer_ids=[customer.pk], now=NOW)
    expected = reference_events(policy=POLICY, orders=orders, acquired_at=customer.acquired_at, cancellations=cancellations, now=NOW)
    assert stored_events(customer) == expected

    # When the history is extended after that run, and the engine runs again late, they still agree
    if h["extension"]:
        t = orders[-1]
        more = []
        for gap in h["extension"]:
            t += dt.timedelta(seconds=gap + 1)
            more.append(t)
        add_orders(customer, more)
        later = NOW + dt.timedelta(days=30)
        lifecycle_refresh(customer_ids=[customer.pk], now=later)
        expected = reference_events(policy=POLICY, orders=orders + more, acquired_at=customer.acquired_at, cancellations=cancellations, now=later)
        assert stored_events(customer) == expected


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(hs=st.lists(history, min_size=5, max_size=25))
def test_a_full_scan_of_many_customers_agrees_with_the_reference(hs):
    built = [(h, *make_customer(h, build_orders(h))) for h in hs]
    lifecycle_scan(full=True, now=NOW, batch_size=7)
    for h, customer, cancellations in built:
        expected = reference_events(policy=POLICY, orders=build_orders(h), acquired_at=customer.acquired_at, cancellations=cancellations, now=NOW)
        assert stored_events(customer) == expected
