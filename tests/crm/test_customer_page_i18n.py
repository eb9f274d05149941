"""The customer page's sentences keep their data apart (issue 16): every datum inside a translated line (an
amount, a key, a code, a person's words, a number of days) sits in its own <bdi>, so it keeps its order in a
right-to-left page, and what a person typed is escaped, never markup."""

from decimal import Decimal

import pytest
from django.test import Client
from django.utils import translation

from crm.selectors import customer_summary, customer_timeline
from tests.crm.test_customer_timeline import ago
from tests.factories import ContactFactory, CustomerFactory, FeedbackFactory, OrderFactory

pytestmark = pytest.mark.django_db


def test_the_timeline_lines_isolate_their_data_and_escape_what_people_typed():
    # Given a customer with an order with a coupon, a note with markup in it, and a survey answer
    customer = CustomerFactory()
    OrderFactory(customer=customer, external_id="ORD-77", amount=Decimal("80.00"), currency="EUR",
                 coupon_code="WELCOME", ordered_at=ago(3))
    ContactFactory(customer=customer, channel="note", direction="internal", notes="<b>call</b> after 18:00",
                   occurred_at=ago(2))
    FeedbackFactory(customer=customer, kind="csat", score=4, comment="Quick", responded_at=ago(1))
    # When the timeline is read in Arabic
    with translation.override("ar"):
        lines = {entry.kind: str(entry.description) for entry in customer_timeline(customer_id=customer.pk).entries}
    # Then the order's amount, key and coupon are each isolated
    assert "<bdi>ORD-77</bdi>" in lines["orders"] and "<bdi>WELCOME</bdi>" in lines["orders"]
    assert lines["orders"].startswith("<bdi>") and "80" in lines["orders"].split("</bdi>")[0]
    # And the note is isolated and escaped; our own label ("Note") is not isolated (it is in the language)
    assert "<bdi>&lt;b&gt;call&lt;/b&gt; after 18:00</bdi>" in lines["calls"] and "<b>" not in lines["calls"]
    assert not lines["calls"].startswith("<bdi>")
    # And the survey's score and comment are isolated
    assert "<bdi>4</bdi>" in lines["feedback"] and "<bdi>Quick</bdi>" in lines["feedback"]


def test_the_rhythm_keeps_its_decimal_and_picks_the_plural_by_the_rounded_days(manager):
    # Given a customer whose two orders are 321.7 days apart
    customer = CustomerFactory(order_count=2, total_spent=Decimal("20.00"), last_order_at=ago(10))
    OrderFactory(customer=customer, ordered_at=ago(331.7), amount=Decimal("10.00"))
    OrderFactory(customer=customer, ordered_at=ago(10), amount=Decimal("10.00"))
    # When the summary is read and the page shown
    summary = customer_summary(customer=customer)
    client = Client()
    client.force_login(manager)
    page = client.get(f"/admin/crm/customer/{customer.pk}/change/").content.decode()
    # Then the rhythm is 321.7 days, the plural form chosen by 322, and the number isolated in the sentence
    assert summary.rhythm_days == 321.7 and summary.rhythm_count == 322
    assert "every <bdi>321.7</bdi> days" in page
    # And the days since the last order are isolated too
    assert "<bdi>10</bdi> days ago" in page
