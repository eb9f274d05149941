"""Every write leaves one audit row naming who made it: the API, the admin, an agent's page, an import, a
task. What the system derives (lifecycle statuses) is recorded by its own events instead (README)."""

import datetime as dt
import hashlib
from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm.models import AuditEntry, Customer, Order
from crm.services.audit import SYSTEM, Actor
from crm.services.customers import customer_create
from crm.services.orders import OrderInput, orders_insert
from tests.crm.test_consent_one_way import _admin_form
from tests.factories import TouchpointFactory
from tests.touchpoints.conftest import make_step
from tests.winback.test_queue_access import case_now
from touchpoints.models import Touchpoint
from touchpoints.services.sending import touchpoint_retry
from touchpoints.tasks import send_batch_task
from winback.models import CaseEvent, LifecycleEvent, WinbackCase
from winback.tasks import lifecycle_refresh_task

pytestmark = pytest.mark.django_db


def zone_at_midday() -> str:
    """A fixed-offset zone where it is around midday now: inside calling and sending hours whenever it runs."""
    offset = 12 - timezone.now().hour
    offset = offset - 24 if offset > 14 else offset
    return "UTC" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"


def last(entity: str, action: str) -> AuditEntry:
    return AuditEntry.objects.filter(entity=entity, action=action).latest("id")


def test_every_api_write_is_audited_with_the_integration(api, integration):
    # Given an integration's token; when it creates and changes each kind of record
    writes = [
        ("post", "/api/customers/", {"external_id": "C-1", "name": "Ada"}, "crm.customer", "create"),
        ("patch", "/api/customers/C-1/", {"name": "Ada King"}, "crm.customer", "update"),
        ("post", "/api/customers/C-1/cancel/", {"cancelled_at": "2025-06-01T00:00:00Z"}, "crm.customer", "cancel"),
        ("post", "/api/orders/", {"external_id": "O-1", "customer": "C-1", "ordered_at": "2025-01-05T10:00:00Z",
                                  "amount": "19.90"}, "crm.order", "create"),
        ("post", "/api/contacts/", {"external_id": "K-1", "customer": "C-1", "channel": "email",
                                    "occurred_at": "2025-01-06T10:00:00Z"}, "crm.contact", "create"),
        ("patch", "/api/contacts/K-1/", {"notes": "replied"}, "crm.contact", "update"),
        ("post", "/api/complaints/", {"external_id": "P-1", "customer": "C-1", "opened_at": "2025-01-07T09:00:00Z",
                                      "summary": "Late"}, "crm.complaint", "create"),
        ("patch", "/api/complaints/P-1/", {"status": "resolved"}, "crm.complaint", "update"),
        ("post", "/api/feedback/", {"external_id": "F-1", "customer": "C-1", "kind": "nps", "score": 9,
                                    "responded_at": "2025-01-08T00:00:00Z"}, "crm.feedback", "create"),
        ("patch", "/api/feedback/F-1/", {"comment": "great"}, "crm.feedback", "update"),
    ]
    for method, url, body, entity, action in writes:
        before = AuditEntry.objects.count()
        answer = getattr(api, method)(url, body, format="json")
        # Then each leaves exactly one audit row, naming the integration's user
        assert answer.status_code in (200, 201), (url, answer.json())
        assert AuditEntry.objects.count() == before + 1, url
        row = last(entity, action)
        assert (row.actor, row.actor_label) == (integration, "shop-integration via api")
        assert row.customer == Customer.objects.get(external_id="C-1")


def test_admin_writes_are_audited_with_the_manager(manager):
    # Given a customer and a manager in the admin
    customer, _ = customer_create(actor=SYSTEM, data={"external_id": "C-1", "name": "Ada", "locale": "en"})
    client = Client()
    client.force_login(manager)
    url = f"/admin/crm/customer/{customer.pk}/change/"
    # When the manager renames the customer and records a contact
    form = _admin_form(client, url)
    at = timezone.localtime(customer.created_at)
    assert client.post(url, {**form, "name": "Ada King"}).status_code == 302
    contact = {"customer": customer.pk, "channel": "note", "direction": "internal", "outcome": "", "notes": "VIP",
               "occurred_at_0": at.strftime("%Y-%m-%d"), "occurred_at_1": at.strftime("%H:%M:%S"), "agent": ""}
    assert client.post("/admin/crm/contact/add/", contact).status_code == 302
    # Then each left an audit row naming the manager
    assert last("crm.customer", "update").actor == manager
    assert last("crm.customer", "update").changes["name"] == ["Ada", "Ada King"]
    assert last("crm.contact", "create").actor_label == "manager via admin"


def test_a_settings_change_in_the_admin_is_in_the_admin_log(manager):
    # Settings rows (calling hours, cadences, offers) hold no customer data: Django's admin log records them
    client = Client()
    client.force_login(manager)
    url = "/admin/winback/leavereason/add/"
    translations = {"translations-TOTAL_FORMS": 0, "translations-INITIAL_FORMS": 0}  # the reason's inline, empty
    assert client.post(url, {"name": "Too far", "position": "9", "active": "on", **translations}).status_code == 302
    entry = LogEntry.objects.latest("id")
    assert (entry.user, entry.object_repr, entry.is_addition()) == (manager, "Too far", True)


def test_an_agents_outcome_on_their_page_is_audited_and_the_case_has_its_event(agent):
    # Given a callable case, claimed by the agent on their page
    # (a case callable now whatever the hour: the customer's zone and phone agree on daytime; a French phone
    # in a zone picked for midday made this test fail whenever it was night in France)
    case = case_now(1)
    customer = case.customer
    client = Client()
    client.force_login(agent)
    assert client.post("/agent/next/").url == f"/agent/case/{case.pk}/"
    # When the agent records "no answer" with a note
    assert client.post(f"/agent/case/{case.pk}/", {"outcome": "no_answer", "note": "rang 5 times"}).status_code == 302
    # Then the call is a contact audited with the agent, and the case's own history says who worked it
    row = last("crm.contact", "create")
    assert (row.actor, row.actor_label, row.customer) == (agent, "agent via queue", customer)
    events = list(CaseEvent.objects.filter(case=case).order_by("id").values_list("kind", "agent_id"))
    assert events == [("claimed", agent.pk), ("worked", agent.pk)]


def test_a_csv_import_is_audited_with_the_file_set_based(tmp_path):
    # Given a file of customers and a file of orders
    people = tmp_path / "people.csv"
    people.write_text("external_id,name\nC-1,Ada\nC-2,Bob\n", encoding="utf-8")
    orders = tmp_path / "orders.csv"
    orders.write_text("external_id,customer,ordered_at,amount\nO-1,C-1,2025-01-05,5\nO-2,C-2,2025-01-06,7\n",
                      encoding="utf-8")
    # When both are imported
    call_command("import_csv", "customers", str(people), "--no-progress")
    call_command("import_csv", "orders", str(orders), "--no-progress")
    # Then every customer row has its audit row, labelled with the file
    assert set(AuditEntry.objects.filter(entity="crm.customer").values_list("actor_label", flat=True)) == {
        "import_csv people.csv"}
    # ... and the orders, a bulk load (issue 18), have one record for the run: who, the file and its hash, the
    # counts; each order carries the run's id instead of an audit row of its own
    assert not AuditEntry.objects.filter(entity="crm.order").exists()
    run = AuditEntry.objects.get(entity="core.batchrun", actor_label="import_csv orders.csv")
    assert (run.action, run.changes["file"], run.changes["created"], run.changes["rejected"]) == (
        "create", "orders.csv", 2, 0)
    assert run.changes["sha256"] == hashlib.sha256(orders.read_bytes()).hexdigest()
    assert set(Order.objects.values_list("import_run_id", flat=True)) == {run.entity_id}


def test_bulk_order_writes_audit_every_row_in_a_fixed_number_of_statements():
    # Given two customers
    a, _ = customer_create(actor=SYSTEM, data={"external_id": "A", "name": "A"})
    b, _ = customer_create(actor=SYSTEM, data={"external_id": "B", "name": "B"})
    when = timezone.now() - dt.timedelta(days=3)

    def batch(prefix: str, n: int) -> int:
        items = [OrderInput(f"{prefix}{i}", ("A", "B")[i % 2], when, Decimal("5"), "EUR", "") for i in range(n)]
        with CaptureQueriesContext(connection) as queries:
            orders_insert(actor=SYSTEM, items=items, all_or_nothing=True)
        return len(queries)

    # When a batch of 10 orders and one of 400 are written
    small, large = batch("S", 10), batch("L", 400)
    # Then each order has its audit row, written per batch of rows, never per row (SQLite splits a long
    # INSERT by its limit on parameters; PostgreSQL copies the orders and audits them in one INSERT ... SELECT)
    assert AuditEntry.objects.filter(entity="crm.order").count() == 410
    assert large - small < 390 // 20
    if connection.vendor == "postgresql":
        assert large == small


def test_a_task_that_sends_a_message_is_audited_as_the_task():
    # Given a consenting at-risk customer and an appreciation touchpoint that is due now
    customer, _ = customer_create(actor=SYSTEM, data={
        "external_id": "T-1", "name": "Tia", "email": "tia@example.com", "email_consent": "granted",
        "timezone": zone_at_midday()})
    Customer.objects.filter(pk=customer.pk).update(status="at_risk")
    tp = TouchpointFactory(customer=customer, step=make_step(), due_at=timezone.now(), anchor_at=timezone.now())
    # When the send task runs
    assert send_batch_task([tp.pk]) == {"sent": 1}
    # Then the message's contact is audited as the task
    row = last("crm.contact", "create")
    assert (row.actor, row.actor_label, row.customer) == (None, "task:touchpoints.send_batch", customer)


def test_a_manager_retrying_failed_touchpoints_is_audited():
    # Given a failed touchpoint
    tp = TouchpointFactory(status="failed", last_error="550 no such user")
    manager = Actor(user=None, label="manager via admin")
    # When a manager retries it
    assert touchpoint_retry(touchpoint_ids=[tp.pk], actor=manager) == 1
    # Then the outbox row is due again, and the retry is audited on the customer
    row = last("touchpoints.touchpoint", "update")
    assert (row.entity_id, row.customer_id, row.actor_label) == (tp.pk, tp.customer_id, "manager via admin")
    assert row.changes == {"status": ["failed", "scheduled"]} and Touchpoint.objects.get(pk=tp.pk).status == "scheduled"


def test_the_lifecycle_task_records_its_changes_as_events_not_audit_rows():
    # Given a customer whose last order was long ago
    customer, _ = customer_create(actor=SYSTEM, data={"external_id": "L-1", "name": "Lee"})
    orders_insert(actor=SYSTEM, all_or_nothing=True, items=[
        OrderInput("LO-1", "L-1", timezone.now() - dt.timedelta(days=400), Decimal("50"), "EUR", "")])
    audit_rows = AuditEntry.objects.count()
    # When the lifecycle refresh task runs
    lifecycle_refresh_task([customer.pk])
    # Then the status moved, each change is a dated lifecycle event, and the case it opened has its event
    customer.refresh_from_db()
    assert customer.status == "lapsed"
    assert set(LifecycleEvent.objects.filter(customer=customer).values_list("kind", flat=True)) >= {
        "acquired", "lapsed"}
    case = WinbackCase.objects.get(customer=customer)
    assert CaseEvent.objects.get(case=case).actor == "lifecycle scan"
    # And no audit row duplicates them (a nightly run over a million customers writes events, set-based)
    assert AuditEntry.objects.count() == audit_rows
