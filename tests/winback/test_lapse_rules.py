"""The dormancy policy's three lapse rules (docs/metrics.md section 1): rhythm, one window, the BG/NBD model."""

import datetime as dt
from importlib import import_module
from decimal import Decimal, getcontext

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from predictions.models import ModelFit
from tests.winback.reference import reference_events
from tests.winback.test_lifecycle_property import NOW, build_orders, history, make_customer, stored_events
from winback.models import DormancyPolicy
from winback.services.lifecycle import lifecycle_refresh, lifecycle_scan
from winback.services.policy import US_PER_DAY, US_PER_WEEK, policy_change, policy_current, policy_params

pytestmark = pytest.mark.django_db
# CDNOW's published BG/NBD parameters (Fader, Hardie & Lee 2005).
CDNOW = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}


def bgnbd_fit_row(params: dict | None = None, *, usable: bool = True) -> ModelFit:
    now = timezone.now()
    return ModelFit.objects.create(model="bgnbd", fitted_at=now, as_of=now, trigger="test", customers=2357,
                                   repeat_buyers=1000, params=params or CDNOW, log_likelihood=-9582.4,
                                   converged=usable, usable=usable)


def model_policy(**values) -> tuple[DormancyPolicy, dict]:
    fit = bgnbd_fit_row()
    policy = policy_change(user=None, values={"rule": "model", "model_fit": fit, "p_alive_min": Decimal("0.30"), **values})
    ref = {"rule": "model", "k": policy.k, "at_risk_k": policy.at_risk_k, "min_orders": policy.min_orders,
           "default_days": policy.default_days, "min_days": policy.min_days, "max_days": policy.max_days,
           "p_alive_min": float(policy.p_alive_min), **CDNOW}
    return policy, ref


def p_alive_exact(*, r, alpha, a, b, x, t_x, T) -> Decimal:
    """The paper's P(alive) in 40-digit decimals: an independent computation of the closed form's target."""
    getcontext().prec = 40
    r, alpha, a, b, t_x, T = (Decimal(repr(float(v))) for v in (r, alpha, a, b, t_x, T))
    ratio = ((alpha + T) / (alpha + t_x)) ** (r + x)
    return 1 / (1 + a / (b + x - 1) * ratio)


@settings(max_examples=200, deadline=None)
@given(r=st.floats(0.05, 5), alpha=st.floats(0.5, 50), a=st.floats(0.05, 5), b=st.floats(0.05, 20),
       x=st.integers(1, 60), t_x=st.floats(0, 500), p=st.sampled_from([0.05, 0.2, 0.3, 0.5, 0.8]))
def test_the_model_threshold_is_where_p_alive_reaches_the_minimum(r, alpha, a, b, x, t_x, p):
    # Given a model policy's parameters with bounds wide enough never to clamp
    params = policy_params(DormancyPolicy(pk=1, p_alive_min=Decimal(str(p)), min_days=1, max_days=3650))
    params = params.__class__(**{**params.__dict__, "model_rule": True, "r": r, "alpha": alpha, "a": a, "b": b,
                                 "min_us": 0, "max_us": 10**18})
    span_us = int(t_x * US_PER_WEEK)
    # When the threshold after the last purchase is computed in closed form
    lapse_us = params.model_threshold_us(span_us=span_us, x=x)
    # Then P(alive) at that age is p_alive_min (unless it was below it already at the last purchase)
    t_x_weeks = span_us / US_PER_WEEK
    at_last = p_alive_exact(r=r, alpha=alpha, a=a, b=b, x=x, t_x=t_x_weeks, T=t_x_weeks)
    if at_last <= Decimal(str(p)):
        assert lapse_us == 0
        return
    T = t_x_weeks + lapse_us / US_PER_WEEK
    assert abs(p_alive_exact(r=r, alpha=alpha, a=a, b=b, x=x, t_x=t_x_weeks, T=T) - Decimal(str(p))) < Decimal("1e-9")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(h=history)
def test_the_model_rule_agrees_with_the_reference_on_random_histories(h):
    # Given a model policy (CDNOW's parameters) and a random history
    _, ref = model_policy()
    orders = build_orders({**h, "on_the_crossing": False})
    customer, cancellations = make_customer(h, orders)
    # When the engine runs (SQL on PostgreSQL, Python elsewhere), then its events are the reference's
    lifecycle_refresh(customer_ids=[customer.pk], now=NOW)
    expected = reference_events(policy=ref, orders=orders, acquired_at=customer.acquired_at, cancellations=cancellations, now=NOW)
    assert stored_events(customer) == expected


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(hs=st.lists(history, min_size=5, max_size=20), rule=st.sampled_from(["model", "window"]))
def test_a_full_scan_under_each_rule_agrees_with_the_reference(hs, rule):
    if rule == "model":
        _, ref = model_policy()
    else:
        policy = policy_change(user=None, values={"rule": "window", "default_days": 60})
        ref = {"rule": "window", "k": policy.k, "at_risk_k": policy.at_risk_k, "default_days": 60}
    built = [(h, *make_customer(h, build_orders({**h, "on_the_crossing": False}))) for h in hs]
    lifecycle_scan(full=True, now=NOW, batch_size=7)
    for h, customer, cancellations in built:
        orders = build_orders({**h, "on_the_crossing": False})
        expected = reference_events(policy=ref, orders=orders, acquired_at=customer.acquired_at, cancellations=cancellations, now=NOW)
        assert stored_events(customer) == expected


def test_a_one_time_buyer_lapses_after_default_days_under_the_model_rule():
    # Given the model rule, under which BG/NBD would call a one-time buyer alive forever
    model_policy(default_days=90)
    customer, _ = make_customer({"contract_start_before": None, "cancellations": []}, [NOW - dt.timedelta(days=100)])
    # When the engine runs 100 days after their only order
    lifecycle_refresh(customer_ids=[customer.pk], now=NOW)
    # Then they lapsed at default_days, not never
    assert ("lapsed", NOW - dt.timedelta(days=10)) in stored_events(customer)


def test_a_repeat_buyer_lapses_where_p_alive_crosses_the_minimum():
    # Given the model rule at 30% (max_days out of the way) and a customer with purchases on two days, 10 weeks apart
    model_policy(max_days=1000)
    first = NOW - dt.timedelta(days=800)
    orders = [first, first + dt.timedelta(weeks=10)]
    customer, _ = make_customer({"contract_start_before": None, "cancellations": []}, orders)
    # When the engine runs
    lifecycle_refresh(customer_ids=[customer.pk], now=NOW)
    # Then the lapse is dated where the paper's P(alive) reaches 30%
    lapsed = [at for kind, at in stored_events(customer) if kind == "lapsed"]
    assert len(lapsed) == 1
    T = (lapsed[0] - first) / dt.timedelta(weeks=1)
    assert abs(p_alive_exact(**CDNOW, x=1, t_x=10, T=T) - Decimal("0.3")) < Decimal("1e-9")


def test_the_model_rule_needs_a_usable_bgnbd_fit():
    with pytest.raises(ValidationError, match="needs a fit"):
        policy_change(user=None, values={"rule": "model"})
    with pytest.raises(ValidationError, match="usable BG/NBD fit"):
        policy_change(user=None, values={"rule": "model", "model_fit": bgnbd_fit_row(usable=False)})
    with pytest.raises(ValidationError, match="p_alive_min|Ensure"):
        policy_change(user=None, values={"rule": "model", "model_fit": bgnbd_fit_row(), "p_alive_min": Decimal("1.00")})
    before = DormancyPolicy.objects.count()
    # And the database refuses a model policy without a fit, whatever wrote it
    with pytest.raises(IntegrityError), transaction.atomic():
        DormancyPolicy.objects.create(rule="model")
    assert DormancyPolicy.objects.count() == before


def test_the_window_rule_lapses_everyone_at_default_days_whatever_their_rhythm():
    # Given the window rule at 60 days and a weekly buyer (the rhythm rule would lapse them after 21 days)
    policy_change(user=None, values={"rule": "window", "default_days": 60})
    first = NOW - dt.timedelta(days=200)
    orders = [first + dt.timedelta(weeks=w) for w in range(6)]
    customer, _ = make_customer({"contract_start_before": None, "cancellations": []}, orders)
    lifecycle_refresh(customer_ids=[customer.pk], now=NOW)
    assert [at for kind, at in stored_events(customer) if kind == "lapsed"] == [orders[-1] + dt.timedelta(days=60)]
    assert policy_params(policy_current()).thresholds(i=6, span_us=35 * US_PER_DAY) == (60 * US_PER_DAY, 30 * US_PER_DAY)


def test_a_fresh_install_starts_with_the_window_rule_and_an_install_with_orders_keeps_its_policy():
    # Given a freshly migrated database (the test database is one), the policy is one window for everyone
    policy = policy_current()
    assert (policy.rule, policy.default_days) == ("window", 90) and "Fresh install" in policy.note
    # And the migration leaves alone an install that has orders (or a policy a manager changed)
    create = import_module("winback.migrations.0014_fresh_install_window").create
    DormancyPolicy.objects.all().delete()
    kept = DormancyPolicy.objects.create(note="docs/metrics.md defaults")
    make_customer({"contract_start_before": None, "cancellations": []}, [NOW])
    create(apps, None)
    assert list(DormancyPolicy.objects.all()) == [kept]
