"""Personal-data erasure: anonymised everywhere, never contacted again, past KPIs unchanged, audited."""

import datetime as dt
import json

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from crm.models import AuditEntry, Complaint, Contact, Customer, Feedback, SuppressionEntry
from crm.services.audit import SYSTEM, Actor
from crm.services.privacy import ERASED, customer_erase, customer_export_data
from crm.services.records import contact_create, feedback_create
from metrics.services.calculators import metrics_compute
from metrics.services.periods import month_of, months_between
from metrics.services.program import agent_table, reasons_table
from tests.crm.privacy import EMAIL, KEY, NAME, PHONE, customer_with_everything
from tests.factories import DispositionFactory, LeaveReasonFactory, UserFactory
from tests.metrics.conftest import Shop, at
from touchpoints.models import Touchpoint
from winback.models import CaseEvent, Disposition, WinbackCase
from winback.services.lifecycle import lifecycle_scan

pytestmark = pytest.mark.django_db
PERSONAL = (NAME, EMAIL, PHONE, KEY)


def _all_text_about(customer: Customer) -> str:
    """Everything stored about the customer, plus every audit row and admin log row, as one text."""
    rows = [customer_export_data(customer=customer),
            list(AuditEntry.objects.values_list("changes", flat=True)),
            list(LogEntry.objects.values_list("object_repr", "change_message"))]
    return json.dumps(rows, ensure_ascii=False, default=str)


def test_an_erasure_leaves_no_personal_value_anywhere_and_keeps_the_rows():
    # Given a customer with personal data in every place it can live, and an admin log row naming them
    held = customer_with_everything()
    LogEntry.objects.create(user=UserFactory(), content_type=ContentType.objects.get_for_model(Customer),
                            object_id=str(held.customer.pk), object_repr=str(held.customer), action_flag=CHANGE,
                            change_message="Changed name.")
    text = _all_text_about(held.customer).lower()
    assert all(value.lower() in text for value in PERSONAL)
    # When their data is erased
    result = customer_erase(actor=SYSTEM, customer=held.customer, reason=f"ticket 9, asked by {NAME}")
    # Then no personal value is left anywhere: record, free text, messages, audit rows, admin log
    customer = Customer.objects.get(pk=held.customer.pk)
    text = _all_text_about(customer)
    assert [value for value in PERSONAL if value.lower() in text.lower()] == []
    assert (customer.name, customer.email, customer.phone, customer.timezone) == (ERASED, "", "", "")
    assert customer.external_id.startswith("erased-") and customer.erased_at and customer.suppressed_at
    assert customer.email_consent == "withdrawn" and customer.do_not_call
    # And the rows stay, with their non-personal values (orders, scores, statuses, times)
    assert customer.order_count == 1 and str(customer.total_spent) == "120.50"
    assert Contact.objects.get(pk=held.contact.pk).notes == ""
    assert Complaint.objects.get(pk=held.complaint.pk).summary == ERASED
    feedback = Feedback.objects.get(pk=held.feedback.pk)
    assert (feedback.comment, feedback.score) == ("", 3)
    assert Disposition.objects.get(case=held.case).note == ""
    sent = Touchpoint.objects.get(pk=held.sent.pk)
    assert (sent.status, sent.subject, sent.provider_message_id) == ("sent", "", "<touchpoint-1@x>")
    # And the audit rows keep their keys and non-personal values
    created = AuditEntry.objects.get(entity="crm.customer", action="create", customer=customer)
    assert created.changes["name"] == ERASED and created.changes["email_consent"] == "granted"
    updated = AuditEntry.objects.get(entity="crm.customer", action="update", customer=customer)
    assert updated.changes["email_consent"] == ["granted", "withdrawn"]
    assert updated.changes["email_consent_source"] == [ERASED, ERASED]
    assert AuditEntry.objects.get(entity="crm.feedback").changes["score"] == 3
    assert result.counts["audit_entries"] >= 4 and sorted(result.listed) == ["email", "external_id", "phone"]


def test_the_erased_person_is_never_contacted_again():
    # Given a customer with an open case being called and a touchpoint waiting to be sent
    held = customer_with_everything()
    # When their data is erased
    customer_erase(actor=SYSTEM, customer=held.customer, reason="ticket 9")
    # Then the pending touchpoint is cancelled with a reason, the sent one stays sent
    pending = Touchpoint.objects.get(pk=held.pending.pk)
    assert (pending.status, pending.reason, pending.last_error) == ("cancelled", "opted_out", "")
    # And the open case is closed through the cases module, with an event saying why
    case = WinbackCase.objects.get(pk=held.case.pk)
    assert (case.status, case.ready, case.closed_at is not None) == ("lost", False, True)
    event = CaseEvent.objects.filter(case=case).latest("id")
    assert (event.kind, event.from_status, event.to_status, event.actor) == ("closed", "open", "lost", "erasure")


def test_the_erasure_is_audited_without_the_data_it_erased(manager):
    # Given a customer
    held = customer_with_everything()
    # When a manager erases them, naming the person in the reason by mistake
    customer_erase(actor=Actor.of(manager, via="admin"), customer=held.customer,
                   reason=f"GDPR request from {NAME} <{EMAIL.lower()}>")
    # Then one erase row says who, when and why, and holds none of the erased values
    row = AuditEntry.objects.get(action="erase")
    assert row.actor == manager and row.customer_id == held.customer.pk and row.at
    assert row.changes["reason"] == f"GDPR request from {ERASED} <{ERASED}>"
    assert not any(v.lower() in json.dumps(row.changes).lower() for v in PERSONAL)


def test_erasing_twice_is_a_no_op_with_a_clear_message(capsys):
    # Given an erased customer
    held = customer_with_everything()
    call_command("customer_erase", KEY, "--reason", "ticket 9", "--yes")
    rows = AuditEntry.objects.count()
    pseudonym = Customer.objects.get(pk=held.customer.pk).external_id
    capsys.readouterr()
    # When they are erased again, by their old key or by their new pseudonym
    call_command("customer_erase", KEY, "--reason", "ticket 9", "--yes")
    first = capsys.readouterr().out
    call_command("customer_erase", pseudonym, "--reason", "ticket 9", "--yes")
    second = capsys.readouterr().out
    # Then each says so, and nothing changed
    assert "was erased already" in first and "erased already" in second
    assert AuditEntry.objects.count() == rows and Customer.objects.get(pk=held.customer.pk).external_id == pseudonym


def test_an_unknown_key_a_missing_reason_or_no_confirmation_changes_nothing():
    # Given a customer
    held = customer_with_everything()
    before = (AuditEntry.objects.count(), SuppressionEntry.objects.count())
    # When the erasure names nobody, has no reason, or is not confirmed
    with pytest.raises(CommandError, match="No customer with external id 'NOPE'; nothing changed"):
        call_command("customer_erase", "NOPE", "--reason", "ticket 9", "--yes")
    with pytest.raises(ValidationError, match="reason"):
        customer_erase(actor=SYSTEM, customer=held.customer, reason="")
    with pytest.raises(CommandError, match="confirm with --yes"):
        call_command("customer_erase", KEY, "--reason", "ticket 9")
    # Then nothing changed
    customer = Customer.objects.get(pk=held.customer.pk)
    assert (customer.name, customer.erased_at) == (NAME, None)
    assert (AuditEntry.objects.count(), SuppressionEntry.objects.count()) == before


def test_a_failure_in_any_app_rolls_the_whole_erasure_back(monkeypatch):
    # Given a customer, and an outbox that fails while being erased
    held = customer_with_everything()

    def broken(**kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(Touchpoint.objects, "filter", broken)
    # When the erasure runs
    with pytest.raises(RuntimeError):
        customer_erase(actor=SYSTEM, customer=held.customer, reason="ticket 9")
    # Then nothing was erased or listed
    monkeypatch.undo()
    assert Customer.objects.get(pk=held.customer.pk).name == NAME
    assert Contact.objects.get(pk=held.contact.pk).notes.startswith(NAME)
    assert not SuppressionEntry.objects.exists() and not AuditEntry.objects.filter(action="erase").exists()


# --- The KPIs of past periods ---------------------------------------------------------------------------------

def _a_shop_with_history() -> list[Customer]:
    shop = Shop()
    agent = UserFactory(username="kpi-agent")
    people = [
        shop.customer(at(2025, 1, 10), at(2025, 2, 10), at(2025, 3, 10), at(2025, 10, 1), amount="80.00",
                      email="erase.me@example.com", phone="+33612345600"),
        shop.customer(at(2025, 1, 20), at(2025, 4, 2), at(2025, 6, 1), amount="30.00", email="two@example.com"),
        shop.customer(at(2025, 2, 5), at(2025, 2, 25), at(2025, 3, 20), at(2025, 4, 9), email="three@example.com"),
        shop.customer(at(2025, 5, 5), amount="200.00", email="four@example.com"),
    ]
    shop.flush()
    shop.cancel(people[3], at(2025, 9, 1))
    lifecycle_scan(full=True, now=at(2026, 6, 1))
    for person in people[:2]:
        feedback_create(actor=SYSTEM, data={"customer": person, "kind": "nps", "score": 4,
                                            "responded_at": at(2025, 8, 3), "comment": "too dear"})
        feedback_create(actor=SYSTEM, data={"customer": person, "kind": "csat", "score": 5,
                                            "responded_at": at(2026, 2, 3), "comment": "thanks"})
        for case in WinbackCase.objects.filter(customer=person):
            contact = contact_create(actor=SYSTEM, data={
                "customer": person, "channel": "call", "occurred_at": case.opened_at + dt.timedelta(days=1),
                "agent": agent, "outcome": "reached_declined", "notes": "said no"})
            DispositionFactory(case=case, agent=agent, contact=contact, outcome="reached_declined",
                               reason=LeaveReasonFactory(), created_at=contact.occurred_at, note="said no")
    return people


def _everything_the_kpis_say(periods, api) -> list:
    figures = metrics_compute(periods=periods)
    tables = [(agent_table(period=p, live=True), reasons_table(period=p, live=True)) for p in periods]
    answers = [api.get("/api/metrics/", {"month": p.label(), "live": "1"}).json() for p in periods[::3]]
    pages = [(a["counts"], a["metrics"]) for a in answers]
    return [{p: {n: f.as_dict() for n, f in figures[p].items()} for p in periods}, tables, pages]


def test_the_kpis_of_past_periods_do_not_change_after_an_erasure(manager):
    # Given a history over two years, with lapses, returns, cases worked by an agent, feedback and an open case
    people = _a_shop_with_history()
    assert WinbackCase.objects.filter(customer__in=people[:2], status="open").exists()
    api = APIClient()
    api.force_authenticate(manager)
    periods = months_between(dt.date(2025, 1, 1), dt.date(2026, 11, 1))
    before = _everything_the_kpis_say(periods, api)
    # When two of the customers are erased
    for person in people[:2]:
        customer_erase(actor=SYSTEM, customer=person, reason="ticket")
    # Then every figure, agent table and reasons table of every past month is as it was
    after = _everything_the_kpis_say(periods, api)
    assert after == before
    assert month_of(dt.date.today()) not in periods  # the erasure's own month may move (cases closed today)
