"""Fitting the purchase models on the business's own orders, keeping every attempt, and scoring customers."""

import datetime as dt
from decimal import Decimal

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from crm.models import Customer, Order
from crm.services.audit import SYSTEM
from crm.services.orders import OrderInput, orders_insert
from predictions import btyd
from predictions.models import CustomerPrediction, ModelFit
from predictions.selectors import fit_latest_usable
from predictions.services.fitting import models_fit
from predictions.services.scoring import predictions_refresh
from predictions.services.summary import purchase_summary
from tests.predictions.cdnow import load_transactions

pytestmark = pytest.mark.django_db
UTC = dt.timezone.utc
CALIBRATION_AS_OF = dt.datetime(1997, 10, 1, tzinfo=UTC)  # the orders of weeks 1-39: to 1997-09-30
PAPER_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PAPER_GG = {"p": 6.25, "q": 3.74, "gamma": 15.44}
counter = iter(range(10**9))


def add_history(histories: dict[str, list[tuple[dt.datetime, Decimal]]]) -> None:
    """Customers (by external id) with their orders, written through the service the API uses."""
    Customer.objects.bulk_create([Customer(external_id=key, name=key) for key in histories])
    items = [OrderInput(f"O{next(counter)}", key, at, amount, "USD")
             for key, orders in histories.items() for at, amount in orders]
    if items:
        orders_insert(actor=SYSTEM, items=items, all_or_nothing=True)


@pytest.fixture
def cdnow() -> None:
    """CDNOW's sample as bare order rows (bulk: the models read only the orders table; the services' audit
    and figures are not what these tests are about, and 6,919 orders through them cost seconds per test)."""
    rows = load_transactions()
    customers = Customer.objects.bulk_create([Customer(external_id=f"CD{c}", name=f"CD{c}") for c in sorted({r[0] for r in rows})])
    ids = {c.external_id: c.pk for c in customers}
    Order.objects.bulk_create([
        Order(external_id=f"O{next(counter)}", customer_id=ids[f"CD{c}"], currency="USD",
              ordered_at=dt.datetime(day.year, day.month, day.day, 12, tzinfo=UTC),
              amount=Decimal(str(amount)).quantize(Decimal("0.01")))
        for c, day, amount in rows], batch_size=2000)


def good_fits() -> dict[str, ModelFit]:
    """An earlier run's usable fits (the paper's parameters), which a failing run must leave in use."""
    now = dt.datetime(2026, 1, 1, tzinfo=UTC)
    rows = {}
    for model, params in (("bgnbd", PAPER_BGNBD), ("mbgnbd", PAPER_BGNBD), ("gamma_gamma", PAPER_GG)):
        rows[model] = ModelFit.objects.create(model=model, fitted_at=now, as_of=now, trigger="nightly", customers=2357,
                                              repeat_buyers=946, params=params, log_likelihood=-1.0, converged=True,
                                              usable=True)
    return rows


def test_the_pipeline_reproduces_the_papers_parameters_from_the_orders_table(cdnow):
    # Given CDNOW's sample as orders (same-day orders of a customer count as one purchase)
    # When the models are fitted on weeks 1-39
    report = models_fit(as_of=CALIBRATION_AS_OF)
    fits = {f.model: f for f in report.fits}
    # Then every fit is usable, with the published parameters
    assert all(f.usable and f.converged and not f.reason for f in fits.values()), [f.reason for f in fits.values()]
    for name, value in PAPER_BGNBD.items():
        assert fits["bgnbd"].params[name] == pytest.approx(value, rel=0.01)
    for name, value in PAPER_GG.items():
        assert fits["gamma_gamma"].params[name] == pytest.approx(value, rel=0.02)
    assert fits["bgnbd"].log_likelihood == pytest.approx(-9582.4, abs=1.0)
    assert (fits["bgnbd"].customers, fits["bgnbd"].repeat_buyers) == (2357, 946)
    # And every customer is scored: BG/NBD for repeat buyers, MBG/NBD for one-time buyers
    assert report.scored == CustomerPrediction.objects.count() == 2357
    assert CustomerPrediction.objects.filter(p_alive_model="bgnbd").count() == 946
    assert not CustomerPrediction.objects.filter(p_alive_model="mbgnbd", p_alive__gte=1).exists()
    # And a customer's P(alive) is the model's for their own history
    summary = purchase_summary(as_of=CALIBRATION_AS_OF)
    one = int(np.flatnonzero(summary.x == 2)[0])
    customer_id = int(summary.customer_id[one])
    expected = btyd.bgnbd_p_alive(params=fits["bgnbd"].params, x=summary.x[one:one + 1], t_x=summary.t_x[one:one + 1],
                                  T=summary.T[one:one + 1])[0]
    prediction = CustomerPrediction.objects.get(customer_id=customer_id)
    assert prediction.p_alive == pytest.approx(expected, abs=1e-12)
    assert prediction.predicted_clv_12m is not None and prediction.predicted_clv_12m > 0
    assert prediction.expected_order_value > 0


def test_the_summary_counts_same_day_orders_once_and_ages_in_weeks():
    # Given a customer with two orders on 1 March, one on 15 March, and the fit as of 29 March 14:00
    add_history({"A": [(dt.datetime(2026, 3, 1, 9, tzinfo=UTC), Decimal("10")),
                       (dt.datetime(2026, 3, 1, 18, tzinfo=UTC), Decimal("5")),
                       (dt.datetime(2026, 3, 15, 9, tzinfo=UTC), Decimal("30")),
                       (dt.datetime(2026, 3, 29, 15, tzinfo=UTC), Decimal("99"))]})  # after as_of: unseen
    summary = purchase_summary(as_of=dt.datetime(2026, 3, 29, 14, tzinfo=UTC))
    # Then one repeat purchase day, two weeks after the first, four weeks of age, 30 spent per repeat day
    assert (summary.x[0], summary.t_x[0], summary.T[0], summary.m[0]) == (1.0, 2.0, 4.0, 30.0)
    assert summary.purchase_days == 2


@pytest.mark.parametrize("history, model, reason", [
    ({}, "bgnbd", "No order history yet."),
    ({f"C{i}": [(dt.datetime(2025, 1, 1, tzinfo=UTC), Decimal("20")), (dt.datetime(2025, 2, 1, tzinfo=UTC), Decimal("20"))]
      for i in range(10)}, "bgnbd", "Only 10 repeat buyers; at least 300 are needed."),
    ({f"C{i}": [(dt.datetime(2025, 1, 1 + i % 28, tzinfo=UTC), Decimal("20"))] for i in range(400)},
     "mbgnbd", "All 400 customers bought once"),
    ({f"C{i}": [(dt.datetime(2025, 1, 1 + i % 28, tzinfo=UTC), Decimal("0")),
                (dt.datetime(2025, 3, 1 + i % 28, tzinfo=UTC), Decimal("0"))] for i in range(400)},
     "gamma_gamma", "No repeat buyer has a positive spend."),
    ({f"C{i}": [(dt.datetime(2026, 1, 5, 8, tzinfo=UTC), Decimal("20")), (dt.datetime(2026, 1, 5, 9, tzinfo=UTC), Decimal("20"))]
      for i in range(400)}, "bgnbd", "Every customer's history is a single day"),
], ids=["empty history", "10 customers", "all one-time buyers", "zero spend", "one-day histories"])
def test_unusable_data_is_recorded_and_the_last_good_fit_stays(history, model, reason):
    # Given an earlier run's usable fits
    earlier = good_fits()
    add_history(history)
    # When the models are fitted on data that cannot support them
    report = models_fit(as_of=dt.datetime(2026, 1, 6, tzinfo=UTC))
    # Then the run does not fail: the attempt is recorded as not usable, with why
    attempt = next(f for f in report.fits if f.model == model)
    assert not attempt.usable and attempt.reason.startswith(reason), attempt.reason
    assert ModelFit.objects.filter(pk=attempt.pk, usable=False).exists()
    # And the product keeps using the last good fit of that model
    assert fit_latest_usable(model=model) == earlier[model]
    # And customers are scored with it (with the earlier fits' parameters)
    if history:
        assert CustomerPrediction.objects.filter(fit__in=[earlier["bgnbd"], earlier["mbgnbd"]]).count() == len(history)


def test_without_any_usable_fit_nobody_gets_a_prediction_and_the_rhythm_rule_alone_applies():
    add_history({f"C{i}": [(dt.datetime(2025, 1, 1, tzinfo=UTC), Decimal("20"))] for i in range(5)})
    report = models_fit(as_of=dt.datetime(2026, 1, 6, tzinfo=UTC))
    assert not any(f.usable for f in report.fits)
    assert report.scored == 0 and not CustomerPrediction.objects.exists()


@override_settings(PREDICTIONS_MAX_ITERATIONS=1)
def test_a_fit_that_does_not_converge_is_recorded_and_the_last_good_fit_stays(cdnow):
    earlier = good_fits()
    report = models_fit(as_of=CALIBRATION_AS_OF)
    for fit in report.fits:
        assert not fit.usable and not fit.converged
        assert fit.reason.startswith("Did not converge"), fit.reason
        assert fit_latest_usable(model=fit.model) == earlier[fit.model]


def test_a_customer_whose_history_changed_is_rescored_and_one_erased_of_orders_loses_the_row(cdnow):
    models_fit(as_of=CALIBRATION_AS_OF)
    customer = Customer.objects.get(external_id="CD0001")
    before = CustomerPrediction.objects.get(customer=customer)
    # When they order again (after the fit) and are rescored as of now
    add_history({})
    orders_insert(actor=SYSTEM, items=[OrderInput("NEW1", "CD0001", dt.datetime(2026, 11, 1, tzinfo=UTC),
                                                  Decimal("20"), "USD")], all_or_nothing=True)
    assert predictions_refresh(customer_ids=[customer.pk]) == 1
    after = CustomerPrediction.objects.get(customer=customer)
    # Then their prediction knows the new purchase (with the same fit), and nobody else's moved
    assert after.fit_id == before.fit_id and after.scored_at > before.scored_at
    assert after.p_alive != before.p_alive
    assert CustomerPrediction.objects.count() == 2357


def test_fit_models_prints_each_fit_and_refuses_a_bad_as_of(cdnow, capsys):
    call_command("fit_models", "--as-of", "1997-10-01T00:00+00:00")
    out = capsys.readouterr().out
    assert "bgnbd" in out and "gamma_gamma" in out and "2357 customers scored" in out
    with pytest.raises(CommandError, match="not an ISO 8601"):
        call_command("fit_models", "--as-of", "yesterday")
    with pytest.raises(CommandError, match="outside"):
        call_command("fit_models", "--as-of", "1900-01-01")
    assert ModelFit.objects.count() == 3  # the refused runs wrote nothing
