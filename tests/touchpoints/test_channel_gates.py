"""Each channel has its own gate: SMS, like calls, never goes to a do-not-call number (rules.py, 5-6)."""

import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone

from crm.services.audit import SYSTEM
from crm.services.customers import customer_update
from tests.factories import UserFactory
from tests.touchpoints.conftest import NOW, make_customer, make_step, make_touchpoint
from touchpoints.services.dispatch import touchpoints_dispatch
from touchpoints.services.sending import touchpoint_send
from touchpoints.services.transports import LoggingSmsBackend
from touchpoints.tasks import send_batch_task
from winback.models import WinbackCase
from winback.services.queue import DispositionInput, case_record_disposition

pytestmark = pytest.mark.django_db

PHONE = "+33612345678"


def at_risk_with_phone(**fields):
    customer = make_customer(phone=PHONE, **fields)
    customer.status = "at_risk"
    customer.save(update_fields=["status"])
    return customer


@pytest.mark.parametrize("marketing, trigger, template", [
    (True, "at_risk", "appreciation"),
    (False, "order", "thank_you"),
])
def test_an_sms_to_a_do_not_call_number_is_suppressed_marketing_or_transactional(marketing, trigger, template):
    # Given a customer with email consent and a phone, who asked not to be called
    LoggingSmsBackend.sent.clear()
    customer = at_risk_with_phone(email_consent="granted")
    customer_update(actor=SYSTEM, customer=customer, data={"do_not_call": True})
    tp = make_touchpoint(customer, make_step(trigger=trigger, marketing=marketing, template=template, channel="sms"))
    # When the SMS comes due
    outcome = touchpoint_send(touchpoint_id=tp.pk, now=NOW)
    # Then nothing is sent, and the touchpoint says why
    tp.refresh_from_db()
    assert outcome == "suppressed"
    assert (tp.status, tp.reason) == ("suppressed", "do_not_call")
    assert list(LoggingSmsBackend.sent) == []


def test_an_agents_do_not_call_stops_an_sms_already_queued():
    # Given an SMS due now and already handed to a worker (queued by the dispatcher); the worker's task
    # reads the clock, so this test runs on the real one
    LoggingSmsBackend.sent.clear()
    now = timezone.now()
    customer = at_risk_with_phone(email_consent="granted")
    tp = make_touchpoint(customer, make_step(channel="sms"), due_at=now - dt.timedelta(minutes=1))
    with transaction.atomic():
        assert touchpoints_dispatch(now=now) == [[tp.pk]]
    # and an agent on the phone with the customer records "do not call" before the worker gets to it
    agent = UserFactory()
    case = WinbackCase.objects.create(customer=customer, lapsed_at=now - dt.timedelta(days=3),
                                      opened_at=now - dt.timedelta(days=3), claimed_by=agent,
                                      lease_until=now + dt.timedelta(minutes=10))
    case_record_disposition(agent=agent, case_id=case.pk, data=DispositionInput(outcome="do_not_call"))
    # When the worker runs the batch
    send_batch_task([tp.pk])
    # Then the SMS is suppressed at send time
    tp.refresh_from_db()
    assert (tp.status, tp.reason) == ("suppressed", "do_not_call")
    assert list(LoggingSmsBackend.sent) == []
