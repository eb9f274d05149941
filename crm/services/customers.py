import datetime as dt
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from core.dialect import id_list_param
from crm.models import AuditEntry, Cancellation, Customer
from crm.services.audit import Actor, apply_changes, audit_record, fields_snapshot, jsonable
from crm.services.errors import ConflictError, ProtectedChange
from crm.services.suppression import suppression_matches
from crm.signals import history_changed
from crm.sql import set_lifecycle_statement
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
    return _suppression_marks(data, current=current)


# What an erasure blanks; an erased record never gets it back (a returning person is a new customer).
ERASED_FIELDS = ("name", "email", "phone", "timezone")

# The values a suppressed customer keeps whatever a caller sends: every existing gate (consent for email,
# do-not-call for calls and SMS) then applies, and the senders check suppressed_at again at send time.
SUPPRESSED_CONSENT_SOURCE = "suppression list"


def _suppression_marks(data: dict[str, Any], *, current: Customer | None) -> dict[str, Any]:
    if current is not None and current.suppressed_at is not None:
        suppressed_at = current.suppressed_at
    else:
        keys = ("email", "phone", "external_id")
        if current is not None and not any(k in data for k in keys):
            return data  # nothing that could match changed: no lookup on every update
        final = {k: data.get(k, getattr(current, k) if current else "") or "" for k in keys}
        if not suppression_matches(**final):
            return data
        suppressed_at = timezone.now()
    now = timezone.now()
    if data.get("email_consent", current.email_consent if current else None) != Customer.Consent.WITHDRAWN:
        data |= {"email_consent": Customer.Consent.WITHDRAWN, "email_consent_at": now,
                 "email_consent_source": SUPPRESSED_CONSENT_SOURCE}
    data["do_not_call_since"] = (current.do_not_call_since if current else None) or data.get("do_not_call_since") or now
    data["suppressed_at"] = suppressed_at
    return data


def customer_protected_changes(*, data: dict[str, Any], current: Customer) -> dict[str, str]:
    """The changes in ``data`` (as given: a consent time the caller did not give is no recorded consent)
    that would undo an opt-out or a do-not-call, with why each is refused.

    Opt-outs are one-way for machines and for anyone retyping a form: only a consent recorded after the
    opt-out (a newer ``email_consent_at``) replaces it, and do-not-call is cleared only by a manager with a
    reason (``customer_do_not_call_clear``). Lowering consent (granted -> withdrawn) is always allowed.
    """
    refused: dict[str, str] = {}
    wanted = data.get("email_consent", current.email_consent)
    clears_dnc = ("do_not_call" in data and not data["do_not_call"]) or (
        "do_not_call_since" in data and data["do_not_call_since"] is None)
    if current.erased_at is not None:
        for field in ERASED_FIELDS:
            if field in data and data[field] != getattr(current, field):
                refused[field] = _("This customer's personal data was erased; it cannot be filled in again.")
    if current.suppressed_at is not None:
        # An erased person asked never to be contacted again: no later consent in a feed replaces that.
        if wanted != Customer.Consent.WITHDRAWN:
            refused["email_consent"] = _(
                "This person asked for their data to be erased and is on the suppression list: email consent "
                "cannot be turned back on.")
        if clears_dnc:
            refused["do_not_call"] = _(
                "This person asked for their data to be erased and is on the suppression list: do-not-call "
                "cannot be cleared.")
        return refused
    if current.email_consent == Customer.Consent.WITHDRAWN and wanted != Customer.Consent.WITHDRAWN:
        opted_out_at = current.email_consent_at or current.updated_at
        given_at = data.get("email_consent_at")
        if given_at is None or given_at <= opted_out_at:
            refused["email_consent"] = _(
                "The customer opted out on %(at)s UTC; only a consent recorded after that (with a later "
                "email_consent_at) can replace the opt-out.") % {"at": f"{opted_out_at:%Y-%m-%d %H:%M}"}
    if current.do_not_call_since is not None and clears_dnc:
        refused["do_not_call"] = _(
            "The customer is on do-not-call since %(date)s; only a manager can clear it, with a reason."
        ) % {"date": f"{current.do_not_call_since:%Y-%m-%d}"}
    return refused


def _full_clean(customer: Customer) -> None:
    # Constraints are the database's: checking the external_id's uniqueness here would answer a concurrent
    # identical create with "already exists" (400) instead of letting the insert decide (customer_create).
    customer.full_clean(exclude=["external_id"] if customer.pk else None, validate_unique=False,
                        validate_constraints=False)


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
            fields = CUSTOMER_INPUT_FIELDS + (["suppressed_at"] if customer.suppressed_at else [])
            audit_record(
                actor=actor,
                action=AuditEntry.Action.CREATE,
                instance=customer,
                changes=fields_snapshot(customer, fields),
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
        # Translators: an API answer; fields are the API's field names, kept as they are.
        raise ConflictError(_(
            "Customer '%(id)s' already exists with different %(fields)s; update it with PATCH %(url)s instead."
        ) % {"id": existing.external_id, "fields": ", ".join(differing), "url": f"/api/customers/{existing.external_id}/"})
    return existing


@transaction.atomic
def customer_update(
    *, actor: Actor, customer: Customer, data: dict[str, Any], kept: dict[str, str] | None = None
) -> Customer:
    """Change a customer; an opt-out or do-not-call is never undone (see ``customer_protected_changes``).

    Without ``kept`` such a change raises ProtectedChange and nothing changes. With a ``kept`` dict (an
    import: a file's stale consent column must not stop its other updates), the protected fields keep their
    value, the rest is applied, and ``kept`` receives {field: why}.
    """
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    data = {k: v for k, v in data.items() if k != "external_id"}
    refused = customer_protected_changes(data=data, current=customer)
    if refused and kept is None:
        raise ProtectedChange(refused)
    if refused:
        kept.update(refused)
        for name in ("email_consent", "email_consent_at", "email_consent_source") if "email_consent" in refused else ():
            data.pop(name, None)
        if "do_not_call" in refused:
            data.pop("do_not_call", None)
            data.pop("do_not_call_since", None)
    data = _normalize(data, current=customer)
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
    """Record an explicit cancellation (a lapse at its own date, docs/metrics.md section 1).

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

def customer_upsert(*, actor: Actor, data: dict[str, Any], kept: dict[str, str]) -> tuple[str, Customer]:
    """Import semantics: create the customer, or bring the existing one up to date with ``data``; an
    opt-out or do-not-call the file would undo is kept and named in ``kept`` ({field: why}).

    Returns ("created" | "updated" | "unchanged", customer).
    """
    existing = Customer.objects.filter(external_id=data["external_id"]).first()
    if existing is None:
        customer, created = customer_create(actor=actor, data=data)
        return ("created" if created else "unchanged"), customer
    before = existing.updated_at
    customer = customer_update(actor=actor, customer=existing, data=data, kept=kept)
    return ("updated" if customer.updated_at != before else "unchanged"), customer


@transaction.atomic
def customer_do_not_call_clear(*, actor: Actor, customer: Customer, reason: str) -> Customer:
    """A manager takes a customer off do-not-call (e.g. they asked to be called again), with a reason."""
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": _("Say why do-not-call is cleared (it is kept in the audit trail).")})
    if actor.user is None or not actor.user.has_perm("crm.clear_do_not_call"):
        raise PermissionDenied(_("Only a manager can clear do-not-call."))
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    if customer.do_not_call_since is None:
        return customer
    if customer.suppressed_at is not None:
        raise ValidationError({"reason": _(
            "This person asked for their data to be erased and is on the suppression list: do-not-call stays.")})
    changes = {"do_not_call_since": [jsonable(customer.do_not_call_since), None], "reason": reason[:500]}
    customer.do_not_call_since = None
    customer.save(update_fields=["do_not_call_since", "updated_at"])
    audit_record(actor=actor, action=AuditEntry.Action.UPDATE, instance=customer, changes=changes, customer=customer)
    return customer


def customers_set_lifecycle(*, cursor, source: str, ids: list[int] | None = None, lo: int | None = None,
                            hi: int | None = None) -> int:
    """The lifecycle engine's results for one batch (the table ``source``: customer_id, status, version,
    due_at) onto the customers, by a list of ids or an id range; returns the rows changed.

    The status, the version computed and the next crossing are crm's columns, written here only."""
    statement = set_lifecycle_statement(source=source, by_ids=ids is not None)
    params: dict[str, Any] = {"ids": id_list_param(ids)} if ids is not None else {"lo": lo, "hi": hi}
    cursor.execute(statement, params)
    return cursor.rowcount
