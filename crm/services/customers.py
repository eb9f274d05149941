import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from django.db.models import F

from crm.models import AuditEntry, Cancellation, Customer
from crm.services.audit import Actor, apply_changes, audit_record, fields_snapshot, jsonable
from crm.services.errors import ConflictError
from crm.signals import history_changed
from crm.validators import call_zones_key, phone_normalize, phone_time_zones

# Fields a caller may set (the denormalised order figures and status belong to the services).
CUSTOMER_INPUT_FIELDS = [
    "external_id",
    "name",
    "email",
    "phone",
    "timezone",
    "locale",
    "acquired_at",
    "email_consent",
    "email_consent_at",
    "email_consent_source",
    "do_not_call_since",
]


def _normalize(data: dict[str, Any], *, current: Customer | None) -> dict[str, Any]:
    data = {k: v for k, v in data.items() if k in CUSTOMER_INPUT_FIELDS or k in ("do_not_call", "call_zones")}
    if "phone" in data:
        try:
            data["phone"] = phone_normalize(data["phone"] or "")
        except ValidationError as exc:
            raise ValidationError({"phone": exc.messages}) from exc
    if "do_not_call" in data:
        wanted = bool(data.pop("do_not_call"))
        already = current.do_not_call_since if current else None
        data["do_not_call_since"] = (already or timezone.now()) if wanted else None
    phone = data.get("phone", current.phone if current else "")
    tz = data.get("timezone", current.timezone if current else "")
    if not tz and phone:
        zones = phone_time_zones(phone)
        # Several zones (a country spanning many) stay blank: callers then check every candidate zone.
        if len(zones) == 1:
            data["timezone"] = zones[0]
    if "phone" in data or "timezone" in data or current is None:
        final_tz = data.get("timezone", current.timezone if current else "")
        data["call_zones"] = call_zones_key(timezone=final_tz, phone=phone)
    if "email_consent" in data and (current is None or data["email_consent"] != current.email_consent):
        data.setdefault("email_consent_at", timezone.now())
    return data


def _full_clean(customer: Customer) -> None:
    customer.full_clean(exclude=["external_id"] if customer.pk else None, validate_unique=False)


def customer_create(*, actor: Actor, data: dict[str, Any]) -> tuple[Customer, bool]:
    """Create a customer, or return the existing one when the same payload is sent again.

    Raises ConflictError when the external_id exists with different data.
    """
    existing = Customer.objects.filter(external_id=data.get("external_id")).first()
    if existing:
        return _same_or_conflict(existing, data), False
    customer = Customer(**_normalize(data, current=None))
    _full_clean(customer)
    try:
        with transaction.atomic():
            customer.save()
            audit_record(
                actor=actor,
                action=AuditEntry.Action.CREATE,
                instance=customer,
                changes=fields_snapshot(customer, CUSTOMER_INPUT_FIELDS),
                customer=customer,
            )
    except IntegrityError:
        # Another request created it between our check and insert: answer as if we had been second.
        existing = Customer.objects.get(external_id=customer.external_id)
        return _same_or_conflict(existing, data), False
    return customer, True


def _same_or_conflict(existing: Customer, data: dict[str, Any]) -> Customer:
    wanted = _normalize(data, current=existing)
    differing = sorted(f for f, v in wanted.items() if getattr(existing, f) != v and f != "email_consent_at")
    if differing:
        raise ConflictError(
            f"Customer '{existing.external_id}' already exists with different {', '.join(differing)}; "
            f"update it with PATCH /api/customers/{existing.external_id}/ instead."
        )
    return existing


@transaction.atomic
def customer_update(*, actor: Actor, customer: Customer, data: dict[str, Any]) -> Customer:
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    data = _normalize({k: v for k, v in data.items() if k != "external_id"}, current=customer)
    changes = apply_changes(customer, data)
    if not changes:
        return customer
    _full_clean(customer)
    if "acquired_at" in changes:
        customer.history_version = F("history_version") + 1
    customer.save()
    customer.refresh_from_db()
    audit_record(actor=actor, action=AuditEntry.Action.UPDATE, instance=customer, changes=changes, customer=customer)
    return customer


@transaction.atomic
def customer_cancel(*, actor: Actor, customer: Customer, cancelled_at: dt.datetime) -> Customer:
    """Record an explicit cancellation (a lapse at its own date, METRICS.md section 1).

    Every cancellation is kept (a customer may cancel, come back and cancel again); the customer shows
    the latest. The lifecycle engine turns it into events and moves the status when it falls due.
    """
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    if customer.acquired_at and cancelled_at < customer.acquired_at:
        raise ValidationError({"cancelled_at": "A cancellation cannot precede the customer's acquisition."})
    _, created = Cancellation.objects.get_or_create(customer=customer, cancelled_at=cancelled_at)
    if not created:
        return customer
    latest = max(cancelled_at, customer.cancelled_at or cancelled_at)
    wanted: dict[str, Any] = {"cancelled_at": latest}
    if latest <= timezone.now():  # in effect already; a future-dated one waits for the lifecycle engine
        wanted["status"] = Customer.Status.CANCELLED
    changes = apply_changes(customer, wanted)
    changes.setdefault("cancelled_at", [jsonable(customer.cancelled_at), jsonable(cancelled_at)])
    customer.history_version = F("history_version") + 1
    customer.save(update_fields=["cancelled_at", "status", "history_version", "updated_at"])
    customer.refresh_from_db()
    audit_record(actor=actor, action=AuditEntry.Action.CANCEL, instance=customer, changes=changes, customer=customer)
    history_changed.send(sender=Customer, customer_ids=[customer.pk])
    return customer

def customer_upsert(*, actor: Actor, data: dict[str, Any]) -> tuple[str, Customer]:
    """Import semantics: create the customer, or bring the existing one up to date with ``data``.

    Returns ("created" | "updated" | "unchanged", customer).
    """
    existing = Customer.objects.filter(external_id=data["external_id"]).first()
    if existing is None:
        customer, created = customer_create(actor=actor, data=data)
        return ("created" if created else "unchanged"), customer
    before = existing.updated_at
    customer = customer_update(actor=actor, customer=existing, data=data)
    return ("updated" if customer.updated_at != before else "unchanged"), customer
