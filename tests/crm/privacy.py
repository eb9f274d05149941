"""A customer with something in every place personal data lives, built through the services where the
audit trail matters (shared by the export, erasure and suppression tests)."""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone

from crm.models import Complaint, Contact, Customer, Feedback
from crm.services.audit import SYSTEM, Actor
from crm.services.customers import customer_create, customer_update
from crm.services.orders import OrderInput, orders_insert
from crm.services.records import complaint_create, contact_create, feedback_create
from tests.factories import CaseEventFactory, CouponFactory, DispositionFactory, TouchpointFactory, WinbackCaseFactory
from touchpoints.models import Touchpoint
from winback.models import WinbackCase

NAME, EMAIL, PHONE, KEY = "Amina Haddad", "Amina.Haddad@Example.com", "+33612345678", "SHOP-4711"


@dataclass
class Held:
    customer: Customer
    contact: Contact
    complaint: Complaint
    feedback: Feedback
    case: WinbackCase
    sent: Touchpoint
    pending: Touchpoint


def customer_with_everything(*, manager=None) -> Held:
    actor = Actor.of(manager, via="admin") if manager else SYSTEM
    customer, _ = customer_create(actor=actor, data={
        "external_id": KEY, "name": NAME, "email": EMAIL, "phone": PHONE, "email_consent": "granted",
        "email_consent_source": f"shop signup of {NAME}"})
    customer = customer_update(actor=actor, customer=customer, data={
        "email_consent": "withdrawn", "email_consent_at": timezone.now(), "email_consent_source": "phone call"})
    orders_insert(actor=SYSTEM, all_or_nothing=True, items=[
        OrderInput("ORD-1", KEY, timezone.now() - dt.timedelta(days=40), Decimal("120.50"), "EUR", "")])
    contact = contact_create(actor=SYSTEM, data={
        "customer": customer, "channel": "call", "occurred_at": timezone.now() - dt.timedelta(days=2),
        "notes": f"{NAME} says the parcel was late; call back on {PHONE}"})
    complaint = complaint_create(actor=SYSTEM, data={
        "customer": customer, "opened_at": timezone.now() - dt.timedelta(days=3),
        "summary": f"{NAME} got a broken mug", "resolution": ""})
    feedback = feedback_create(actor=SYSTEM, data={
        "customer": customer, "kind": "nps", "score": 3, "responded_at": timezone.now() - dt.timedelta(days=1),
        "comment": f"Write to me at {EMAIL}"})
    customer.refresh_from_db()
    case = WinbackCaseFactory(customer=customer)
    CaseEventFactory(case=case)
    DispositionFactory(case=case, note=f"{NAME} wants a discount")
    CouponFactory(customer=customer, case=case)
    sent = TouchpointFactory(customer=customer, status="sent", subject=f"Thank you, {NAME}",
                             sent_at=timezone.now() - dt.timedelta(days=5), provider_message_id="<touchpoint-1@x>")
    pending = TouchpointFactory(customer=customer, last_error=f"450 mailbox {EMAIL} busy")
    return Held(customer, contact, complaint, feedback, case, sent, pending)
