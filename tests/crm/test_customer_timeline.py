"""The customer 360 in the admin: the summary at the top of the customer page, and one timeline of everything
about the customer (crm.timeline, with winback's and touchpoints' sources), newest first, filtered by type
and paged, in a number of queries that does not grow with the history."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.html import strip_tags

from crm.models import Customer
from crm.selectors import customer_summary, customer_timeline
from crm.services.audit import SYSTEM, Actor
from crm.services.customers import customer_do_not_call_clear, customer_update
from crm.timeline import MAX_PAGE, timeline_kinds
from tests.factories import (
    CadenceStepFactory, CaseEventFactory, ComplaintFactory, ContactFactory, CouponFactory, CustomerFactory,
    DispositionFactory, FeedbackFactory, LeaveReasonFactory, LifecycleEventFactory, OfferFactory, OrderFactory,
    TouchpointFactory, UserFactory, WinbackCaseFactory,
)

pytestmark = pytest.mark.django_db
NOW = timezone.now().replace(microsecond=0)


def ago(days: float) -> dt.datetime:
    return NOW - dt.timedelta(days=days)


def page_of(client: Client, customer: Customer, **params) -> str:
    return client.get(f"/admin/crm/customer/{customer.pk}/change/", params).content.decode()


@pytest.fixture
def staff(manager) -> Client:
    client = Client()
    client.force_login(manager)
    return client


def one_of_everything(customer: Customer, *, start: float = 100, agent=None, tag: str = "") -> None:
    """One row of each source for ``customer``, ``start`` days ago and on, a day apart, newest last (``tag``
    keeps the unique names unique when called again)."""
    agent = agent or UserFactory(username="caller")
    day = iter(range(int(start), 0, -1))
    OrderFactory(customer=customer, ordered_at=ago(next(day)), amount=Decimal("80.00"), coupon_code="WELCOME")
    ContactFactory(customer=customer, channel="note", direction="internal", occurred_at=ago(next(day)),
                   notes="Prefers mornings")
    LifecycleEventFactory(customer=customer, kind="lapsed", occurred_at=ago(next(day)))
    case = WinbackCaseFactory(customer=customer, opened_at=ago(next(day)), status="won")
    CaseEventFactory(case=case, kind="opened", at=case.opened_at)
    CaseEventFactory(case=case, kind="claimed", at=ago(next(day)), agent=agent, actor="agent", from_status="open")
    offer = OfferFactory(name="Twenty off")
    called_at = ago(next(day))
    DispositionFactory(
        case=case, agent=agent, outcome="reached_will_return", created_at=called_at,
        reason=LeaveReasonFactory(name=f"Too expensive{tag}"),
        coupon=CouponFactory(customer=customer, offer=offer, case=case, code=f"BACK-7Q2{tag}"),
        contact=ContactFactory(customer=customer, channel="call", agent=agent, outcome="reached_will_return",
                               occurred_at=called_at))
    CaseEventFactory(case=case, kind="worked", at=ago(next(day)), agent=agent, actor="agent", from_status="open")
    CaseEventFactory(case=case, kind="closed", at=ago(next(day)), from_status="open", to_status="won",
                     actor="lifecycle scan", reason="ordered after the call")
    step = CadenceStepFactory(cadence__name="Thank you", channel="email")
    sent_at = ago(next(day))
    TouchpointFactory(customer=customer, step=step, status="sent", sent_at=sent_at, due_at=sent_at,
                      subject="Thanks for your order",
                      contact=ContactFactory(customer=customer, channel="email", outcome="sent", occurred_at=sent_at))
    TouchpointFactory(customer=customer, step=CadenceStepFactory(cadence__name="We miss you", channel="email"),
                      status="suppressed", reason="no_consent", due_at=ago(next(day)))
    ComplaintFactory(customer=customer, opened_at=ago(next(day)), category="delivery", severity="high",
                     summary="Parcel lost", status="resolved", resolved_at=ago(next(day)), resolution="Sent again")
    FeedbackFactory(customer=customer, kind="nps", score=3, comment="Slow delivery", responded_at=ago(next(day)))


def test_every_source_is_on_the_timeline_once_with_a_readable_line(manager):
    # Given a customer with one of everything, and a consent change in the audit trail
    customer = CustomerFactory(email_consent="granted")
    one_of_everything(customer)
    customer_update(actor=Actor.of(manager, via="admin"), customer=customer, data={"email_consent": "withdrawn"})
    # When the whole timeline is read
    entries = customer_timeline(customer_id=customer.pk).entries
    # (the crm describers isolate each datum in a <bdi>: the text without the tags is the line people read)
    lines = [(e.kind, e.label, strip_tags(e.description)) for e in entries]
    # Then each source has its entry, described in one line
    expected = [
        ("orders", "Order", "€80.00, order ORD-"),
        ("orders", "Order", "coupon WELCOME"),
        ("calls", "Contact", "Note: Prefers mornings"),
        ("lifecycle", "Lifecycle", "Status: Lapsed"),
        ("cases", "Case opened", "Win-back case #"),
        ("cases", "Case claimed by an agent", " by caller"),
        ("cases", "Case closed", "by lifecycle scan, Open to Won (ordered after a contact or coupon) (ordered after the call)"),
        ("calls", "Call", "Call by caller: Reached - will return; reason for leaving: Too expensive; "
                          "offer: Twenty off, coupon BACK-7Q2"),
        ("touchpoints", "Touchpoint sent", "Email: Thank you (Thanks for your order)"),
        ("touchpoints", "Touchpoint suppressed", "Email: We miss you; reason: No marketing consent"),
        ("complaints", "Complaint opened", "Delivery, severity: High, now: Resolved: Parcel lost"),
        ("complaints", "Complaint resolved", "Delivery: Sent again"),
        ("feedback", "Feedback", "NPS (0-10): score 3 (Slow delivery)"),
        ("consent", "Consent changed", "Email consent changed from Consent given to Opted out; "),
        ("consent", "Consent changed", " (by manager via admin)"),
    ]
    for kind, label, text in expected:
        assert any(k == kind and lb == label and text in d for k, lb, d in lines), (kind, label, text, lines)
    # And a call or a sent message is there once, as its disposition or touchpoint, not again as a contact;
    # the case's "call recorded" event is the disposition too
    assert [lb for _, lb, _ in lines].count("Call") == 1
    assert not any(d.startswith("Email (Outbound)") for _, _, d in lines)
    assert not any(lb == "Case call recorded" for _, lb, _ in lines)
    assert len(entries) == 13


def test_the_timeline_is_newest_first_across_sources():
    customer = CustomerFactory()
    one_of_everything(customer)
    entries = customer_timeline(customer_id=customer.pk).entries
    instants = [e.at for e in entries]
    assert instants == sorted(instants, reverse=True)
    assert entries[0].label == "Feedback" and entries[-1].label == "Order"  # the newest and the oldest made


def test_the_type_filter_shows_one_type_and_every_type_is_offered():
    customer = CustomerFactory()
    one_of_everything(customer)
    assert [k.key for k in timeline_kinds()] == [
        "orders", "lifecycle", "cases", "calls", "touchpoints", "complaints", "feedback", "consent"]
    for kind, count in (("orders", 1), ("calls", 2), ("cases", 3), ("complaints", 2), ("touchpoints", 2)):
        page = customer_timeline(customer_id=customer.pk, kind=kind)
        assert {e.kind for e in page.entries} == {kind} and len(page.entries) == count, kind
        assert page.kind == kind


def test_pages_split_the_timeline_without_gaps_or_overlaps():
    # Given 120 orders and 15 calls, interleaved in time
    customer = CustomerFactory()
    for i in range(120):
        OrderFactory(customer=customer, ordered_at=ago(200 - i))
    for i in range(15):
        ContactFactory(customer=customer, channel="call", occurred_at=ago(200 - 8 * i - 0.5))
    every = customer_timeline(customer_id=customer.pk, per_page=1000).entries
    assert len(every) == 135
    # When it is read 50 at a time
    pages = [customer_timeline(customer_id=customer.pk, page=n) for n in (1, 2, 3)]
    # Then the pages are the whole, in order, and say whether an older one exists
    assert [len(p.entries) for p in pages] == [50, 50, 35]
    assert [p.has_next for p in pages] == [True, True, False]
    assert [e for p in pages for e in p.entries] == every
    assert customer_timeline(customer_id=customer.pk, page=4).entries == []
    # And a filtered page pages within its type
    orders = customer_timeline(customer_id=customer.pk, kind="orders", page=3)
    assert len(orders.entries) == 20 and {e.kind for e in orders.entries} == {"orders"}


def test_the_number_of_queries_does_not_grow_with_the_history(staff):
    # Given a customer with a little history and one with a lot of it
    small, large = CustomerFactory(), CustomerFactory()
    one_of_everything(small)
    for n in range(6):
        one_of_everything(large, start=400 - 60 * n, agent=UserFactory(username=f"caller{n}"), tag=str(n))
    for customer in (small, large):
        WinbackCaseFactory(customer=customer, claimed_by=UserFactory())

    def queries(call) -> int:
        call()  # warm: what is cached per process (content types, settings rows) is read once
        with CaptureQueriesContext(connection) as captured:
            call()
        return len(captured)

    # Then the timeline, a page of it and the whole customer page each take as many queries for both
    for call in (lambda c: customer_timeline(customer_id=c.pk), lambda c: customer_timeline(customer_id=c.pk, page=2),
                 lambda c: customer_summary(customer=c), lambda c: page_of(staff, c)):
        assert queries(lambda: call(small)) == queries(lambda: call(large)), call
    assert queries(lambda: customer_timeline(customer_id=large.pk)) <= 10  # one per source


def test_the_summary_shows_status_rhythm_value_last_order_consent_and_the_open_case(staff):
    # Given a customer with three orders 10 and 20 days apart, opted out of email, on do-not-call
    customer = CustomerFactory(status="at_risk", order_count=3, total_spent=Decimal("150.00"), last_order_at=ago(5),
                               email_consent="withdrawn", email_consent_at=ago(8), do_not_call_since=ago(7))
    for days, amount in ((35, "40.00"), (25, "50.00"), (5, "60.00")):
        OrderFactory(customer=customer, ordered_at=ago(days), amount=Decimal(amount))
    agent = UserFactory(username="holder")
    case = WinbackCaseFactory(customer=customer, claimed_by=agent)
    # When the summary is read
    summary = customer_summary(customer=customer)
    # Then the rhythm is the mean gap (35 - 5) / 2 = 15 days, and the rest is as recorded
    assert summary.rhythm_days == 15.0
    assert summary.lifetime_value == Decimal("150.00") and summary.last_order.amount == Decimal("60.00")
    assert summary.days_since_last_order == 5 and summary.prediction is None
    assert [(f.label, strip_tags(f.value).split(",")[0]) for f in summary.facts] == [("Open win-back case", f"#{case.pk}")]
    assert "held by holder" in strip_tags(summary.facts[0].value)
    # And the page shows it, before the edit form
    page = page_of(staff, customer)
    assert page.index('id="customer-summary"') < page.index('id="customer_form"') < page.index('id="timeline"')
    text = strip_tags(page)
    for shown in ("At risk", "every 15.0 days", "€150.00", "€60.00", "Opted out", "not allowed (do-not-call)",
                  "held by holder", "docs/metrics.md section 1", "No prediction"):
        assert shown in text, shown
    # And the rhythm's number is isolated from the sentence around it
    assert "every <bdi>15.0</bdi> days" in page


def test_a_customer_with_one_order_and_no_case_has_no_rhythm_yet(staff):
    customer = CustomerFactory(order_count=1, total_spent=Decimal("10.00"), last_order_at=ago(2))
    OrderFactory(customer=customer, ordered_at=ago(2), amount=Decimal("10.00"))
    summary = customer_summary(customer=customer)
    assert summary.rhythm_days is None
    assert [f.value for f in summary.facts] == ["None"]
    assert "not yet (fewer than two orders)" in page_of(staff, customer)


def test_the_page_filters_and_pages_the_timeline_with_plain_links(staff):
    # Given a customer with 60 orders and a few other things
    customer = CustomerFactory()
    one_of_everything(customer, start=200)
    for i in range(60):
        OrderFactory(customer=customer, ordered_at=ago(300 - i))
    # When the page is opened, then filtered to orders, then its second page
    first = page_of(staff, customer)
    orders = page_of(staff, customer, timeline_type="orders")
    second = page_of(staff, customer, timeline_type="orders", timeline_page="2")
    # Then the links carry the type and the page, and each shows what it says
    assert '?timeline_type=orders#timeline"' in first and 'data-kind="feedback"' in first
    assert orders.count('class="c360-entry" data-kind="orders"') == 50 and 'class="c360-entry" data-kind="feedback"' not in orders
    assert "?timeline_type=orders&amp;timeline_page=2#timeline" in orders
    assert second.count('class="c360-entry" data-kind="orders"') == 11 and 'rel="next"' not in second
    assert "?timeline_type=orders&amp;timeline_page=1#timeline" in second


@pytest.mark.parametrize("params, error", [
    ({"timeline_type": "gossip"}, "Unknown timeline type “gossip”"),
    ({"timeline_page": "0"}, f"from 1 to {MAX_PAGE}"),
    ({"timeline_page": "two"}, f"from 1 to {MAX_PAGE}"),
    ({"timeline_page": str(MAX_PAGE + 1)}, f"from 1 to {MAX_PAGE}"),
])
def test_a_bad_type_or_page_is_said_and_the_first_page_of_everything_shown(staff, params, error):
    customer = CustomerFactory()
    OrderFactory(customer=customer)
    FeedbackFactory(customer=customer)
    page = page_of(staff, customer, **params)
    assert error in page
    assert 'data-kind="orders"' in page and 'class="c360-entry" data-kind="feedback"' in page


def test_consent_changes_come_from_the_audit_trail_with_the_reason(manager):
    customer = CustomerFactory(do_not_call_since=ago(3))
    customer_do_not_call_clear(actor=Actor.of(manager, via="admin"), customer=customer, reason="Asked to be called")
    customer_update(actor=SYSTEM, customer=customer, data={"name": "Not about consent"})
    entries = customer_timeline(customer_id=customer.pk, kind="consent").entries
    assert len(entries) == 1
    assert strip_tags(entries[0].description).startswith("Do not call since changed from ")
    assert strip_tags(entries[0].description).endswith("to (empty) (by manager via admin): Asked to be called")
    # And who and why are isolated data
    assert entries[0].description.endswith("(by <bdi>manager via admin</bdi>): <bdi>Asked to be called</bdi>")
