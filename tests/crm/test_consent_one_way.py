"""Opt-outs and do-not-call are one-way for imports and integrations (docs/design.md, compliance rules).

Only a consent recorded after the opt-out (a later email_consent_at) replaces it; only a manager clears
do-not-call, with a reason that stays in the audit trail.
"""

import datetime as dt
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.utils import timezone

from crm.models import AuditEntry, Customer
from crm.services.audit import SYSTEM, Actor
from crm.services.customers import customer_do_not_call_clear, customer_update
from crm.services.imports import csv_import
from tests.crm.test_import_csv import report_rows, write
from touchpoints.services.links import unsubscribe_url

pytestmark = pytest.mark.django_db

CUSTOMERS = (
    "external_id,name,email,phone,email_consent,do_not_call\n"
    "C-1,Ada Lovelace,ada@example.com,+33612345678,granted,false\n"
    "C-2,Alan Turing,alan@example.com,,granted,\n"
)


def _opt_out_by_link_and_do_not_call(customer: Customer) -> Customer:
    """The customer presses the one-click unsubscribe (a real POST), and an agent records do-not-call."""
    path = urlparse(unsubscribe_url(customer_id=customer.pk, touchpoint_id=0)).path
    assert Client().post(path, {"List-Unsubscribe": "One-Click"}).status_code == 200
    customer_update(actor=SYSTEM, customer=customer, data={"do_not_call": True})
    customer.refresh_from_db()
    assert (customer.email_consent, customer.do_not_call) == ("withdrawn", True)
    return customer


def test_reimporting_the_same_file_keeps_the_opt_out_and_do_not_call_and_says_so(tmp_path: Path):
    # Given customers imported with consent, and one who then opted out and asked not to be called
    path = write(tmp_path, "customers.csv", CUSTOMERS)
    csv_import(kind="customers", path=path, actor=SYSTEM, report_path=tmp_path / "r1.csv")
    ada = _opt_out_by_link_and_do_not_call(Customer.objects.get(external_id="C-1"))
    opted_out_at = ada.email_consent_at

    # When the same file is imported again, with a changed name for her
    path = write(tmp_path, "customers.csv", CUSTOMERS.replace("Ada Lovelace", "Ada King"))
    result = csv_import(kind="customers", path=path, actor=SYSTEM, report_path=tmp_path / "r2.csv")

    # Then the opt-out and do-not-call stand, the rest of her row is imported, and the report says what was kept
    ada.refresh_from_db()
    assert (ada.email_consent, ada.email_consent_at, ada.do_not_call, ada.name) == (
        "withdrawn", opted_out_at, True, "Ada King")
    assert (result.updated, result.rejected, result.kept) == (1, 0, 1)
    notes = report_rows(tmp_path / "r2.csv")
    assert {(row, column) for row, column, _ in notes} == {(2, "email_consent"), (2, "do_not_call")}
    assert all(reason.startswith("Kept") for _, _, reason in notes)


def test_an_import_with_a_consent_recorded_after_the_opt_out_replaces_it(tmp_path: Path):
    # Given a customer who opted out
    path = write(tmp_path, "customers.csv", CUSTOMERS)
    csv_import(kind="customers", path=path, actor=SYSTEM, report_path=tmp_path / "r1.csv")
    ada = _opt_out_by_link_and_do_not_call(Customer.objects.get(external_id="C-1"))
    # When a file brings a consent given after that (with its time), and one given before it
    later = (ada.email_consent_at + dt.timedelta(hours=1)).isoformat()
    earlier = (ada.email_consent_at - dt.timedelta(hours=1)).isoformat()
    header = "external_id,name,email_consent,email_consent_at,email_consent_source\n"
    before = write(tmp_path, "before.csv", header + f"C-1,Ada Lovelace,granted,{earlier},shop form\n")
    csv_import(kind="customers", path=before, actor=SYSTEM, report_path=tmp_path / "r2.csv")
    ada.refresh_from_db()
    assert ada.email_consent == "withdrawn"
    after = write(tmp_path, "after.csv", header + f"C-1,Ada Lovelace,granted,{later},shop form\n")
    csv_import(kind="customers", path=after, actor=SYSTEM, report_path=tmp_path / "r3.csv")
    # Then only the newer recorded consent counts; do-not-call is untouched by either
    ada.refresh_from_db()
    assert (ada.email_consent, ada.email_consent_source, ada.do_not_call) == ("granted", "shop form", True)


def test_a_patch_cannot_undo_an_opt_out_or_do_not_call_and_changes_nothing(api):
    # Given a customer who opted out and is on do-not-call
    api.post("/api/customers/", {"external_id": "C-1", "name": "Ada", "email": "ada@example.com",
                                 "email_consent": "granted"}, format="json")
    ada = _opt_out_by_link_and_do_not_call(Customer.objects.get(external_id="C-1"))
    audits = AuditEntry.objects.count()

    # When an integration PATCHes consent back (no time, then an older time) or clears do-not-call
    attempts = [
        {"email_consent": "granted", "name": "Ada K"},
        {"email_consent": "granted", "email_consent_at": (ada.email_consent_at - dt.timedelta(days=1)).isoformat()},
        {"do_not_call": False, "name": "Ada K"},
    ]
    answers = [api.patch("/api/customers/C-1/", body, format="json") for body in attempts]

    # Then each is a 409 that says why, and nothing changed
    assert [a.status_code for a in answers] == [409, 409, 409]
    assert "opted out" in answers[0].json()["detail"] and "manager" in answers[2].json()["detail"]
    ada.refresh_from_db()
    assert (ada.name, ada.email_consent, ada.do_not_call) == ("Ada", "withdrawn", True)
    assert AuditEntry.objects.count() == audits

    # When the PATCH brings a consent recorded after the opt-out
    later = (ada.email_consent_at + dt.timedelta(minutes=5)).isoformat()
    answer = api.patch("/api/customers/C-1/", {"email_consent": "granted", "email_consent_at": later}, format="json")
    # Then it is recorded
    assert answer.status_code == 200 and answer.json()["email_consent"] == "granted"


def test_only_a_manager_clears_do_not_call_with_a_reason_kept_in_the_audit_trail(manager, integration):
    customer = Customer.objects.create(external_id="C-1", name="Ada", do_not_call_since=timezone.now())
    with pytest.raises(PermissionDenied):
        customer_do_not_call_clear(actor=Actor.of(integration, via="api"), customer=customer, reason="asked")
    with pytest.raises(Exception, match="Say why"):
        customer_do_not_call_clear(actor=Actor.of(manager, via="admin"), customer=customer, reason="  ")
    customer.refresh_from_db()
    assert customer.do_not_call

    customer = customer_do_not_call_clear(actor=Actor.of(manager, via="admin"), customer=customer,
                                          reason="Called us to ask for calls again (ticket 4411).")

    assert not customer.do_not_call
    audit = AuditEntry.objects.get(entity="crm.customer", entity_id=customer.pk, action="update")
    assert audit.changes["reason"] == "Called us to ask for calls again (ticket 4411)."
    assert audit.actor == manager


def _admin_form(client: Client, url: str) -> dict[str, str]:
    """The change form's fields as the browser would post them (the inlines' management forms included)."""
    page = client.get(url)
    form, formsets = page.context["adminform"].form, page.context["inline_admin_formsets"]
    data = {name: "" if value is None else value for name, value in form.initial.items() if name in form.fields}
    for formset in formsets:
        management = formset.formset.management_form
        data |= {management.add_prefix(k): v for k, v in management.initial.items()}
    return data


def test_the_admin_form_refuses_an_undone_opt_out_and_clears_do_not_call_only_with_a_reason(manager):
    # Given a customer who opted out and is on do-not-call, and a manager in the admin
    customer = Customer.objects.create(external_id="C-1", name="Ada", email_consent="withdrawn",
                                       email_consent_at=timezone.now(), do_not_call_since=timezone.now())
    client = Client()
    client.force_login(manager)
    url = f"/admin/crm/customer/{customer.pk}/change/"
    form = _admin_form(client, url)
    at = timezone.localtime(customer.email_consent_at)
    form |= {"email_consent_at_0": at.strftime("%Y-%m-%d"), "email_consent_at_1": at.strftime("%H:%M:%S.%f")}
    form.pop("email_consent_at", None)
    # When the manager sets consent back without a newer consent time
    page = client.post(url, {**form, "email_consent": "granted"})
    # Then the form says why and nothing changed
    assert page.status_code == 200 and "opted out" in page.context["adminform"].form.errors["email_consent"][0]
    customer.refresh_from_db()
    assert customer.email_consent == "withdrawn"
    # When the manager clears do-not-call with a reason
    page = client.post(url, {**form, "clear_do_not_call_reason": "Asked to be called again."})
    # Then it is cleared, and the reason is in the audit trail
    assert page.status_code == 302, (page.context["errors"], page.context["adminform"].form.errors)
    customer.refresh_from_db()
    assert not customer.do_not_call
    assert AuditEntry.objects.filter(entity_id=customer.pk, changes__reason="Asked to be called again.").exists()
