"""The audit trail reads as "field: old -> new" with the fields' names and the choices' labels, in the audit
trail's pages and on the customer page, never as a Python dict."""

import datetime as dt

import pytest
from django.test import Client

from core.locale_format import date_local
from crm.selectors import ChangeLine, audit_change_lines
from crm.services.audit import Actor
from crm.services.customers import customer_update
from tests.factories import AuditEntryFactory, CustomerFactory

pytestmark = pytest.mark.django_db
AUDIT = "/admin/crm/auditentry/"


@pytest.fixture
def staff(manager) -> Client:
    client = Client()
    client.force_login(manager)
    return client


def test_changes_read_with_the_fields_names_and_the_choices_labels(settings):
    settings.TIME_ZONE = "Europe/Paris"
    lines = audit_change_lines(entity="crm.customer", changes={
        "email_consent": ["granted", "withdrawn"], "do_not_call_since": ["2026-03-01T09:30:00+00:00", None],
        "reason": "Asked to be called"})
    assert lines == [
        ChangeLine("Email consent", "Consent given", "Opted out"),
        # in the business time zone, the date as the language writes it
        ChangeLine("Do not call since", f"{date_local(value=dt.date(2026, 3, 1))} 10:30", "(empty)"),
        ChangeLine("Reason", None, "Asked to be called"),  # not a field: the key, and only the value
    ]
    # A create records the new values only
    assert audit_change_lines(entity="crm.feedback", changes={"kind": "nps", "score": 3}) == [
        ChangeLine("Kind", None, "NPS (0-10)"), ChangeLine("Score", None, "3")]


def test_the_audit_entry_page_and_list_show_before_and_after_not_a_dict(staff):
    # Given an audit row of a consent withdrawal and a rename
    entry = AuditEntryFactory(changes={"email_consent": ["granted", "withdrawn"], "name": ["Ada", "Ada King"]})
    # When a manager opens it, and the list
    detail = staff.get(f"{AUDIT}{entry.pk}/change/").content.decode()
    listing = staff.get(AUDIT).content.decode()
    # Then both show each change as "field: old -> new", readable
    for page in (detail, listing):
        # (each value isolated, so it reads right in a right-to-left page)
        assert ('<span class="c360-field">Email consent:</span> <del><bdi>Consent given</bdi></del> '
                '<span class="c360-arrow" aria-hidden="true">&rarr;</span> <ins><bdi>Opted out</bdi></ins>') in page
        assert ('<span class="c360-field">Name:</span> <del><bdi>Ada</bdi></del>' in page
                and "<ins><bdi>Ada King</bdi></ins>" in page)
        assert "{&#x27;" not in page and "[&quot;" not in page and "&#x27;withdrawn&#x27;" not in page
    assert "crm/customer360.css" in detail  # the arrow turns around right to left (static/crm/customer360.css)


def test_the_customer_pages_audit_trail_is_readable(staff, manager):
    customer = CustomerFactory(name="Ada")
    customer_update(actor=Actor.of(manager, via="admin"), customer=customer, data={"name": "Ada King"})
    page = staff.get(f"/admin/crm/customer/{customer.pk}/change/").content.decode()
    assert ('<span class="c360-field">Name:</span> <del><bdi>Ada</bdi></del>' in page
            and "<ins><bdi>Ada King</bdi></ins>" in page)
    assert "[&#x27;Ada&#x27;" not in page
