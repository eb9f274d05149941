"""Personal-data export: one JSON file of everything held about a customer, audited with its reason."""

import json

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from config.pipeline import PERSONAL_DATA
from crm.models import AuditEntry, Customer
from crm.services.audit import SYSTEM, Actor
from crm.services.privacy import SCHEMA_VERSION, customer_export
from crm.signals import customer_erasing, customer_exporting
from tests.crm.privacy import EMAIL, KEY, NAME, customer_with_everything

pytestmark = pytest.mark.django_db


def test_the_export_holds_every_record_with_iso_dates_and_decimal_strings():
    # Given a customer with orders, contacts, a complaint, feedback, a case with events, and touchpoints
    held = customer_with_everything()
    # When their data is exported
    data = customer_export(actor=SYSTEM, customer=held.customer, reason="ticket 42")
    # Then the file has a schema version, the export time and every section
    assert data["schema_version"] == SCHEMA_VERSION and data["exported_at"].startswith("20")
    assert data["customer"]["name"] == NAME and data["customer"]["email"] == EMAIL
    assert data["orders"][0]["amount"] == "120.50" and "T" in data["orders"][0]["ordered_at"]
    assert data["contacts"][0]["notes"].startswith(NAME)
    assert data["complaints"][0]["summary"] == f"{NAME} got a broken mug"
    assert data["feedback"][0]["comment"] == f"Write to me at {EMAIL}" and data["feedback"][0]["score"] == 3
    case = data["winback_cases"][0]
    assert case["id"] == held.case.pk and case["events"][0]["kind"] == "opened"
    assert case["dispositions"][0]["note"] == f"{NAME} wants a discount"
    assert data["coupons"][0]["case_id"] == held.case.pk
    assert {t["subject"] for t in data["touchpoints"]} == {f"Thank you, {NAME}", ""}
    # And the consent history comes from the audit trail: given, then withdrawn
    consents = [h["changes"].get("email_consent") for h in data["consent_history"]]
    assert consents == ["granted", ["granted", "withdrawn"]]
    # And the audit rows about them are in it, with who made them
    assert {e["entity"] for e in data["audit_entries"]} >= {"crm.customer", "crm.order", "crm.contact"}
    assert all(isinstance(e["actor"], str) for e in data["audit_entries"])
    json.dumps(data)  # plain JSON values only


def test_an_export_is_audited_with_who_and_why(manager):
    # Given a customer
    held = customer_with_everything()
    # When a manager exports their data
    customer_export(actor=Actor.of(manager, via="admin"), customer=held.customer, reason="ticket 42")
    # Then an export audit row names the manager and the reason
    row = AuditEntry.objects.get(action="export")
    assert row.actor == manager and row.customer == held.customer and row.changes["reason"] == "ticket 42"
    assert row.changes["sections"]["orders"] == 1


def test_the_command_writes_one_json_file(tmp_path):
    # Given a customer
    customer_with_everything()
    out = tmp_path / "export.json"
    # When the command exports them to a file
    call_command("customer_export", KEY, "--reason", "ticket 7", "--output", str(out))
    # Then the file is the export, and the audit row names the command
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["customer"]["external_id"] == KEY
    assert AuditEntry.objects.get(action="export").actor_label == "command:customer_export"


def test_an_unknown_customer_or_a_missing_reason_is_a_clear_error_that_changes_nothing(tmp_path):
    # Given a customer
    held = customer_with_everything()
    before = AuditEntry.objects.count()
    # When the command names nobody, or no reason is given
    with pytest.raises(CommandError, match="No customer with external id 'NOPE'"):
        call_command("customer_export", "NOPE", "--reason", "ticket 7", "--output", str(tmp_path / "x.json"))
    with pytest.raises(ValidationError, match="reason"):
        customer_export(actor=SYSTEM, customer=held.customer, reason="  ")
    # Then nothing was written
    assert AuditEntry.objects.count() == before and not (tmp_path / "x.json").exists()
    assert Customer.objects.count() == 1


def test_every_app_that_holds_customer_data_answers_the_requests():
    # The export and the erasure reach winback and touchpoints through config/pipeline.py
    for signal, receiver in PERSONAL_DATA:
        live, _ = signal._live_receivers(sender=Customer)
        assert receiver in live, receiver
    assert {signal for signal, _ in PERSONAL_DATA} == {customer_exporting, customer_erasing}
