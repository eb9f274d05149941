"""Where the predictions show and what they change: the API, the queue's order, the agent's card, the admin,
a personal-data request."""

import datetime as dt
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone
from django.utils.html import strip_tags

from crm.services.audit import SYSTEM
from crm.services.orders import OrderInput, orders_insert
from crm.services.privacy import customer_erase, customer_export_data
from predictions.models import CustomerPrediction
from tests.factories import CustomerFactory, CustomerPredictionFactory
from tests.winback.test_queue_access import case_now
from winback.models import WinbackCase
from winback.services.cases import case_priority, cases_refresh_predicted_value
from winback.services.queue import case_claim_next
from winback.services.lifecycle import lifecycle_refresh

pytestmark = pytest.mark.django_db


def predict(customer, *, p_alive: float = 0.23, clv: str | None = "410.40", value: str | None = "55.00") -> CustomerPrediction:
    return CustomerPredictionFactory(customer=customer, p_alive=p_alive,
                                     expected_order_value=None if value is None else Decimal(value),
                                     predicted_clv_12m=None if clv is None else Decimal(clv))


def test_the_api_shows_the_predictions_under_their_names_and_null_before_any_fit(api):
    # Given a customer without a prediction and one with
    bare, scored = CustomerFactory(external_id="BARE"), CustomerFactory(external_id="SCORED")
    predict(scored)
    names = ("p_alive", "p_alive_model", "expected_purchases_90d", "expected_order_value", "predicted_clv_12m")
    # Then the representation carries exactly those names: null before a fit, the values after
    before = api.get(f"/api/customers/{bare.external_id}/").json()
    assert {name: before[name] for name in names} == dict.fromkeys(names)
    after = api.get(f"/api/customers/{scored.external_id}/").json()
    assert {name: after[name] for name in names} == {
        "p_alive": 0.23, "p_alive_model": "bgnbd", "expected_purchases_90d": 0.4, "expected_order_value": "55.00",
        "predicted_clv_12m": "410.40"}
    listed = {row["external_id"]: row["p_alive"] for row in api.get("/api/customers/").json()["results"]}
    assert listed == {"BARE": None, "SCORED": 0.23}


def test_the_schema_says_how_each_prediction_is_computed(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    customer = schema["components"]["schemas"]["Customer"]["properties"]
    assert "BG/NBD" in customer["p_alive"]["description"]
    assert "discount rate" in customer["predicted_clv_12m"]["description"]
    assert customer["p_alive"].get("nullable") is True


def test_the_queue_ranks_by_predicted_value_and_keeps_revenue_without_a_prediction(agent):
    # Given three open cases: revenue 500 without a prediction, revenue 100 worth 900, revenue 1000 worth 50
    plain, rich, fading = case_now(500), case_now(100), case_now(1000)
    predict(rich.customer, clv="900.00")
    predict(fading.customer, clv="50.00")
    # When the priorities follow the predictions (as after a fit)
    assert cases_refresh_predicted_value(now=timezone.now()) == 2
    # Then the queue serves the most valuable first: predicted value, else the 12 months' revenue
    served = [case_claim_next(agent=agent, now=timezone.now()).pk]
    WinbackCase.objects.filter(pk=served[0]).update(claimed_by=None, status="lost")
    served.append(case_claim_next(agent=agent, now=timezone.now()).pk)
    assert served == [rich.pk, plain.pk]
    fading.refresh_from_db()
    assert (fading.predicted_value, fading.priority) == (Decimal("50.00"), Decimal("50.00"))
    # And running it again changes nothing
    assert cases_refresh_predicted_value(now=timezone.now()) == 0
    assert case_priority(revenue_12m=Decimal(7), is_recovery=True) == 14
    assert case_priority(revenue_12m=Decimal(7), is_recovery=True, predicted_value=Decimal(3)) == 6


def test_a_case_opened_by_the_scan_takes_the_predicted_value():
    # Given a lapsed customer with a prediction
    customer = CustomerFactory()
    orders_insert(actor=SYSTEM, items=[OrderInput("L1", customer.external_id, timezone.now() - dt.timedelta(days=200),
                                                  Decimal("80"), "EUR")], all_or_nothing=True)
    predict(customer, clv="321.00")
    # When the lifecycle opens the case
    lifecycle_refresh(customer_ids=[customer.pk])
    case = WinbackCase.objects.get(customer=customer)
    # Then its priority is the predicted value, not the revenue
    assert (case.predicted_value, case.revenue_12m, case.priority) == (Decimal("321.00"), Decimal("80.00"), Decimal("321.00"))


def test_the_agents_card_says_how_likely_they_still_buy_and_what_they_are_worth(agent):
    case = case_now(100)
    predict(case.customer, p_alive=0.234, clv="410.40")
    client = Client()
    client.force_login(agent)
    claimed = client.post("/agent/next/")
    page = strip_tags(client.get(claimed.url).content.decode())  # the figures sit in <bdi>s (right to left)
    assert "Likely still buying: 23%" in page
    assert "worth about €410.40 a year" in page


def test_the_admin_customer_page_shows_the_predictions_and_how_they_are_computed(manager):
    customer = CustomerFactory()
    client = Client()
    client.force_login(manager)
    page = client.get(f"/admin/crm/customer/{customer.pk}/change/").content.decode()
    assert "No prediction" in page
    predict(customer, p_alive=0.5)
    page = client.get(f"/admin/crm/customer/{customer.pk}/change/").content.decode()
    # (the figures and the document's path are isolated data: read the text without the tags)
    text = strip_tags(page)
    assert 'id="predictions"' in page and "50%" in text and "docs/metrics.md section 7" in text


def test_a_personal_data_request_exports_the_prediction_and_an_erasure_deletes_it():
    customer = CustomerFactory()
    predict(customer)
    assert customer_export_data(customer=customer)["predictions"][0]["p_alive"] == 0.23
    customer_erase(actor=SYSTEM, customer=customer, reason="ticket 1")
    assert not CustomerPrediction.objects.filter(customer=customer).exists()
