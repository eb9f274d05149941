import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from crm.models import Customer, Feedback
from crm.services.audit import SYSTEM
from crm.services.customers import customer_create, customer_update
from crm.services.orders import order_input_parse
from crm.services.records import feedback_create
from tests.factories import CustomerFactory, FeedbackFactory, OrderFactory

pytestmark = pytest.mark.django_db


def test_bad_phone_is_refused_with_the_reason_and_nothing_is_saved():
    with pytest.raises(ValidationError) as exc:
        customer_create(actor=SYSTEM, data={"external_id": "C1", "name": "Ann", "phone": "12"})
    assert "phone" in exc.value.message_dict
    assert not Customer.objects.exists()


def test_phone_is_stored_in_e164_and_gives_the_time_zone():
    customer, created = customer_create(actor=SYSTEM, data={"external_id": "C1", "name": "Ann", "phone": "+33 6 12 34 56 78"})
    assert created
    assert customer.phone == "+33612345678"
    assert customer.timezone == "Europe/Paris"


def test_explicit_time_zone_wins_over_the_phone():
    customer, _ = customer_create(
        actor=SYSTEM, data={"external_id": "C1", "name": "Ann", "phone": "+33612345678", "timezone": "Asia/Dubai"}
    )
    assert customer.timezone == "Asia/Dubai"


def test_bad_time_zone_is_refused():
    with pytest.raises(ValidationError) as exc:
        customer_create(actor=SYSTEM, data={"external_id": "C1", "name": "Ann", "timezone": "Mars/Olympus"})
    assert "IANA" in str(exc.value.message_dict["timezone"])


def test_bad_time_zone_on_update_changes_nothing():
    customer = CustomerFactory(timezone="Europe/Paris")
    with pytest.raises(ValidationError):
        customer_update(actor=SYSTEM, customer=customer, data={"timezone": "Nowhere/Land", "name": "Changed"})
    customer.refresh_from_db()
    assert (customer.timezone, customer.name) == ("Europe/Paris", customer.name)
    assert customer.name != "Changed"


@pytest.mark.parametrize("amount, message", [("-1", "negative"), ("abc", "not a number"), ("1.234", "2 decimal"), ("NaN", "finite")])
def test_order_amount_is_validated(amount, message):
    item, errors = order_input_parse({"external_id": "O1", "customer": "C1", "ordered_at": "2024-01-01", "amount": amount})
    assert item is None
    assert message in errors["amount"]


def test_negative_amount_is_also_refused_by_the_database():
    with pytest.raises(IntegrityError), transaction.atomic():
        OrderFactory(amount=Decimal("-5"))


@pytest.mark.parametrize("kind, score, ok", [
    ("nps", 0, True), ("nps", 10, True), ("nps", 11, False), ("nps", -1, False),
    ("csat", 1, True), ("csat", 5, True), ("csat", 0, False), ("csat", 6, False),
    ("ces", 1, True), ("ces", 7, True), ("ces", 8, False),
])
def test_feedback_score_range_depends_on_kind(kind, score, ok):
    customer = CustomerFactory()
    data = {"customer": customer, "kind": kind, "score": score, "responded_at": timezone.now()}
    if ok:
        assert feedback_create(actor=SYSTEM, data=data).score == score
    else:
        with pytest.raises(ValidationError) as exc:
            feedback_create(actor=SYSTEM, data=data)
        assert "score" in exc.value.message_dict
        assert not Feedback.objects.exists()


def test_out_of_range_score_is_also_refused_by_the_database():
    with pytest.raises(IntegrityError), transaction.atomic():
        FeedbackFactory(kind="csat", score=9)
