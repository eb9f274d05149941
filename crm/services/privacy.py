"""Personal-data requests: export everything held about a customer, or erase it (README "Personal-data
requests").

An export is one JSON document: crm's records here, the other apps' through ``customer_exporting``.

An erasure anonymises in one transaction: crm's free text and the customer's identifying fields here, the
other apps' (cases, touchpoints) through ``customer_erasing``, and the audit rows' before/after values. It
keeps every row the KPIs count (orders, lifecycle events, cases and their events, touchpoints, contacts,
feedback scores) with its dates, amounts and statuses, so the figures of past periods stay as they were.
The email, phone and shop key go on the suppression list first, so the person is never contacted again,
even if a feed sends them again; the erased record itself is suppressed and its shop key replaced by a
pseudonym (a re-sent key makes a new, suppressed customer: the shop's key is what links the row back to
the person, so it cannot stay).

Each export and erasure leaves an audit row (who, when, why); the erasure's row holds counts and the
reason with any of the erased values taken out, never the data it erased.
"""

import datetime as dt
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.models import AuditEntry, Cancellation, Complaint, Contact, Customer, Feedback, Order
from crm.services.audit import Actor, audit_record, jsonable
from crm.services.suppression import Kind, suppression_add, suppression_matches
from crm.signals import customer_erasing, customer_exporting

SCHEMA_VERSION = 1
ERASED = "[erased]"
ERASURE_SOURCE = "erasure"
PSEUDONYM_PREFIX = "erased-"
MAX_REASON = 500

# The audit rows' keys whose values are personal, per entity; every other value stays (statuses, dates,
# amounts, scores). Free text outside these (a manager's reason) has the erased values cut out.
PERSONAL_AUDIT_KEYS = {
    "crm.customer": {"name", "email", "phone", "timezone", "call_zones", "external_id", "email_consent_source"},
    "crm.contact": {"notes"},
    "crm.complaint": {"summary", "resolution"},
    "crm.feedback": {"comment"},
}
CONSENT_KEYS = ("email_consent", "email_consent_at", "email_consent_source", "do_not_call_since", "suppressed_at")


def row_json(instance: models.Model, *, exclude: Iterable[str] = ()) -> dict[str, Any]:
    """Every stored column of a row as JSON values: ISO 8601 dates, decimals as strings, keys as ids."""
    skip = set(exclude)
    return {f.attname: jsonable(getattr(instance, f.attname)) for f in instance._meta.concrete_fields
            if f.name not in skip}


def rows_json(queryset: Iterable[models.Model], **kwargs: Any) -> list[dict[str, Any]]:
    return [row_json(row, **kwargs) for row in queryset]


def privacy_reason(reason: str | None) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Give the reason for this personal-data request (it is kept in the "
                                           "audit trail).")})
    return reason[:MAX_REASON]


class AlreadyErased(ValidationError):
    """The request names a customer erased before: their key now lives only on the suppression list."""


def customer_for_request(*, external_id: str) -> Customer:
    """The customer a personal-data request names; a clear error when there is none (nothing changes),
    AlreadyErased when the key was erased before (the record now has a pseudonym)."""
    external_id = (external_id or "").strip()
    customer = Customer.objects.filter(external_id=external_id).first() if external_id else None
    if customer is not None:
        return customer
    if external_id and Kind.EXTERNAL_ID in suppression_matches(external_id=external_id):
        raise AlreadyErased({"external_id": _(
            "The customer '%(id)s' was erased already (their key is on the suppression list); nothing changed.")
            % {"id": external_id}})
    raise ValidationError({"external_id": _("No customer with external id '%(id)s'; nothing changed.")
                           % {"id": external_id}}, code="unknown")


# --- Export ------------------------------------------------------------------------------------------------

def _consent_history(entries: list[AuditEntry]) -> list[dict[str, Any]]:
    history = []
    for entry in sorted(entries, key=lambda e: (e.at, e.pk)):
        if entry.entity != "crm.customer":
            continue
        changed = {k: v for k, v in entry.changes.items() if k in CONSENT_KEYS}
        if changed:
            history.append({"at": jsonable(entry.at), "by": entry.actor_label, "action": entry.action,
                            "changes": changed, "reason": entry.changes.get("reason", "")})
    return history


def customer_export_data(*, customer: Customer, now: dt.datetime | None = None) -> dict[str, Any]:
    """Everything held about the customer, as one JSON-ready document (no audit row: see customer_export)."""
    now = now or timezone.now()
    audit = list(AuditEntry.objects.filter(Q(customer=customer) | Q(entity="crm.customer", entity_id=customer.pk))
                 .order_by("at", "id"))
    data: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "exported_at": jsonable(now),
        "notes": [
            "Dates are ISO 8601 (UTC offsets included); amounts are decimal strings.",
            "Consent history is read from the audit trail: every change of consent or do-not-call, who made "
            "it and when.",
            "Orders are kept as single amounts: this service holds no order lines.",
        ],
        "customer": row_json(customer),
        "consent_history": _consent_history(audit),
        "cancellations": rows_json(Cancellation.objects.filter(customer=customer).order_by("cancelled_at")),
        "orders": rows_json(Order.objects.filter(customer=customer).order_by("ordered_at", "id")),
        "contacts": rows_json(Contact.objects.filter(customer=customer).order_by("occurred_at", "id")),
        "complaints": rows_json(Complaint.objects.filter(customer=customer).order_by("opened_at", "id")),
        "feedback": rows_json(Feedback.objects.filter(customer=customer).order_by("responded_at", "id")),
        "audit_entries": [{**row_json(e, exclude=["actor"]), "actor": e.actor_label} for e in audit],
    }
    for _receiver, sections in customer_exporting.send(sender=Customer, customer=customer):
        data.update(sections)
    data["suppression"] = {
        "suppressed_at": jsonable(customer.suppressed_at), "erased_at": jsonable(customer.erased_at),
        "listed": suppression_matches(email=customer.email, phone=customer.phone, external_id=customer.external_id),
    }
    return data


@transaction.atomic
def customer_export(*, actor: Actor, customer: Customer, reason: str) -> dict[str, Any]:
    """The export document, and an audit row saying who took it, when and why."""
    reason = privacy_reason(reason)
    now = timezone.now()
    data = customer_export_data(customer=customer, now=now)
    sections = {k: len(v) for k, v in data.items() if isinstance(v, list) and k != "notes"}
    audit_record(actor=actor, action=AuditEntry.Action.EXPORT, instance=customer,
                 changes={"reason": reason, "sections": sections}, customer=customer)
    return data


# --- Erasure -----------------------------------------------------------------------------------------------

@dataclass
class Erasure:
    customer: Customer
    already: bool
    counts: dict[str, int] = field(default_factory=dict)
    listed: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if self.already:
            return _("Customer %(id)s was erased already on %(at)s; nothing changed.") % {
                "id": self.customer.external_id, "at": f"{self.customer.erased_at:%Y-%m-%d %H:%M} UTC"}
        counts = ", ".join(f"{name} {n}" for name, n in sorted(self.counts.items()))
        return _("Erased; now %(id)s. Rows anonymised: %(counts)s. On the suppression list: %(listed)s.") % {
            "id": self.customer.external_id, "counts": counts or "-", "listed": ", ".join(self.listed) or "-"}


def _personal_values(customer: Customer) -> list[str]:
    values = [customer.name, customer.email, customer.phone, customer.external_id]
    # Longest first, so a name is cut out before a shorter value inside it; very short ones would cut words.
    return sorted({v for v in values if v and len(v) >= 3}, key=len, reverse=True)


def _cut(text: str, values: list[str]) -> str:
    lowered = text.lower()
    for value in values:
        start = lowered.find(value.lower())
        while start != -1:
            text = text[:start] + ERASED + text[start + len(value):]
            lowered = text.lower()
            start = lowered.find(value.lower(), start + len(ERASED))
    return text


def _scrub_value(value: Any, *, whole: bool, values: list[str]) -> Any:
    if isinstance(value, list):
        return [_scrub_value(v, whole=whole, values=values) for v in value]
    if isinstance(value, dict):
        return {k: _scrub_value(v, whole=whole, values=values) for k, v in value.items()}
    if whole:
        return ERASED if value not in (None, "") else value
    return _cut(value, values) if isinstance(value, str) else value


def audit_changes_scrubbed(*, entity: str, changes: dict[str, Any], values: list[str]) -> dict[str, Any]:
    """An audit row's changes with the personal values replaced; keys and other values kept."""
    personal = PERSONAL_AUDIT_KEYS.get(entity, set())
    return {key: _scrub_value(value, whole=key in personal, values=values) for key, value in changes.items()}


def _audit_scrub(customer: Customer, values: list[str]) -> int:
    rows = AuditEntry.objects.filter(Q(customer=customer) | Q(entity="crm.customer", entity_id=customer.pk))
    changed = []
    for row in rows.only("id", "entity", "changes").iterator(chunk_size=1000):
        scrubbed = audit_changes_scrubbed(entity=row.entity, changes=row.changes, values=values)
        if scrubbed != row.changes:
            row.changes = scrubbed
            changed.append(row)
    AuditEntry.objects.bulk_update(changed, ["changes"], batch_size=500)
    # The admin's own log names the object it changed ("Ada Lovelace (C-1)").
    LogEntry.objects.filter(content_type=ContentType.objects.get_for_model(Customer),
                            object_id=str(customer.pk)).update(object_repr=ERASED, change_message="[]")
    return len(changed)


@transaction.atomic
def customer_erase(*, actor: Actor, customer: Customer, reason: str) -> Erasure:
    """Erase the customer's personal data everywhere, keep what the KPIs count, never contact them again.
    Erasing an erased customer changes nothing (``Erasure.already``)."""
    reason = privacy_reason(reason)
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    if customer.erased_at is not None:
        return Erasure(customer=customer, already=True)
    now = timezone.now()
    values = _personal_values(customer)
    listed = suppression_add(email=customer.email, phone=customer.phone, external_id=customer.external_id,
                             source=ERASURE_SOURCE)
    counts = {
        "contacts": Contact.objects.filter(customer=customer).exclude(notes="").update(notes=""),
        "complaints": Complaint.objects.filter(customer=customer).update(summary=ERASED, resolution=""),
        "feedback": Feedback.objects.filter(customer=customer).exclude(comment="").update(comment=""),
    }
    for _receiver, erased in customer_erasing.send(sender=Customer, customer=customer, now=now):
        counts.update(erased)
    counts["audit_entries"] = _audit_scrub(customer, values)
    pseudonym = PSEUDONYM_PREFIX + secrets.token_hex(12)
    Customer.objects.filter(pk=customer.pk).update(
        external_id=pseudonym, name=ERASED, email="", phone="", timezone="", call_zones="",
        email_consent=Customer.Consent.WITHDRAWN, email_consent_at=now, email_consent_source=ERASURE_SOURCE,
        do_not_call_since=customer.do_not_call_since or now, suppressed_at=customer.suppressed_at or now,
        erased_at=now, updated_at=now)
    customer.refresh_from_db()
    audit_record(actor=actor, action=AuditEntry.Action.ERASE, instance=customer, customer=customer, changes={
        "reason": _cut(reason, values), "external_id": [ERASED, pseudonym], "anonymised": counts,
        "suppression_list": listed})
    return Erasure(customer=customer, already=False, counts=counts, listed=listed)
