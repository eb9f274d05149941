"""The case card: what an agent sees for a call, read with plain statements and typed as the ORM would."""

import datetime as dt
from decimal import Decimal

import pytest

from crm.models import Complaint, Contact, Customer
from tests.factories import ComplaintFactory, ContactFactory, OrderFactory, UserFactory
from tests.winback.test_queue import NOON_PARIS, open_case
from winback.models import Disposition, LeaveReason, Offer, WinbackCase
from winback.selectors import case_card

pytestmark = pytest.mark.django_db
DAY = dt.timedelta(days=1)


def test_the_card_holds_the_latest_history_and_only_active_choices():
    # given a customer with 7 orders, 2 open and 7 resolved complaints, 12 contacts, 7 calls (6 with a reason)
    case = open_case()
    customer = case.customer
    orders = [OrderFactory(customer=customer, ordered_at=NOON_PARIS - (70 - 10 * i) * DAY, amount=Decimal(f"{i}0.50"))
              for i in range(7)]
    Customer.objects.filter(pk=customer.pk).update(order_count=7, last_order_at=orders[-1].ordered_at)
    open_ones = [ComplaintFactory(customer=customer, opened_at=NOON_PARIS - i * DAY, status=s)
                 for i, s in ((40, Complaint.Status.OPEN), (2, Complaint.Status.IN_PROGRESS))]
    resolved = [ComplaintFactory(customer=customer, opened_at=NOON_PARIS - (30 - i) * DAY, status=Complaint.Status.RESOLVED,
                                 resolved_at=NOON_PARIS - (29 - i) * DAY, resolution=f"fixed {i}") for i in range(7)]
    contacts = [ContactFactory(customer=customer, occurred_at=NOON_PARIS - (20 - i) * DAY) for i in range(12)]
    agent = UserFactory()
    reasons = [LeaveReason.objects.create(name=f"Reason {i}", position=i) for i in range(3)]
    gone = LeaveReason.objects.create(name="Retired reason", active=False)
    calls = [Disposition.objects.create(case=case, agent=agent, contact=contacts[i], outcome="reached_declined",
                                        reason=reasons[i % 3] if i else None, note=f"call {i}", created_at=NOON_PARIS - (10 - i) * DAY)
             for i in range(7)]
    offer = Offer.objects.create(name="Ten off", script="10% off")
    old = Offer.objects.create(name="Old offer", script="old", active=False)

    # when the card is read
    card = case_card(case=WinbackCase.objects.get(pk=case.pk), now=NOON_PARIS)

    # then it shows the latest of each, newest first, with values typed as the ORM gives them
    assert card["customer"] == customer and card["customer"].call_zones == "Europe/Paris"
    assert card["recent_orders"] == orders[::-1][:5]
    assert card["recent_orders"][0].amount == Decimal("60.50") and isinstance(card["recent_orders"][0].amount, Decimal)
    assert card["recent_orders"][0].ordered_at == NOON_PARIS - 10 * DAY
    assert card["rhythm_days"] == 10.0 and card["days_since_last_order"] == 10
    assert card["open_complaints"] == [open_ones[1], open_ones[0]]
    assert card["past_complaints"] == resolved[::-1][:5]
    assert card["past_complaints"][0].get_category_display() == "Other"
    assert card["contacts"] == contacts[::-1][:10]
    assert card["contacts"][0].get_channel_display() == Contact.Channel.CALL.label
    assert card["earlier_reasons"] == calls[::-1][:5]
    assert [d.reason.name for d in card["earlier_reasons"]] == ["Reason 0", "Reason 2", "Reason 1", "Reason 0", "Reason 2"]
    assert set(reasons) <= set(card["reasons"]) and gone not in card["reasons"]
    assert card["reasons"] == sorted(card["reasons"], key=lambda r: (r.position, r.name))
    assert offer in card["offers"] and old not in card["offers"]
    assert card["local_time"].utcoffset() == dt.timedelta(hours=1)


def test_a_customer_with_no_history_has_an_empty_card():
    card = case_card(case=open_case(), now=NOON_PARIS)
    assert card["recent_orders"] == [] and card["rhythm_days"] is None and card["days_since_last_order"] is None
    assert card["open_complaints"] == card["past_complaints"] == card["contacts"] == card["earlier_reasons"] == []
