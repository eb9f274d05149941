"""Contacts, complaints and feedback: create, update and import-upsert, each with its audit row."""

from typing import Any, Literal, TypeVar

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.utils import timezone
from django.utils.translation import gettext

from crm.models import AuditEntry, Complaint, Contact, Customer, Feedback
from crm.services.audit import Actor, apply_changes, audit_record, fields_snapshot
from crm.services.errors import ConflictError
from crm.validators import validate_feedback_score

R = TypeVar("R", Contact, Complaint, Feedback)
Outcome = Literal["created", "updated", "unchanged"]

CONTACT_FIELDS = ["external_id", "customer", "channel", "direction", "occurred_at", "agent", "outcome", "notes"]
COMPLAINT_FIELDS = [
    "external_id", "customer", "opened_at", "category", "severity", "summary", "status", "resolved_at",
    "resolution", "owner",
]
FEEDBACK_FIELDS = ["external_id", "customer", "kind", "score", "comment", "responded_at"]
FIELDS: dict[type[models.Model], list[str]] = {
    Contact: CONTACT_FIELDS, Complaint: COMPLAINT_FIELDS, Feedback: FEEDBACK_FIELDS
}


def _complaint_rules(complaint: Complaint, data: dict[str, Any]) -> None:
    from django.utils.translation import gettext as _

    status = data.get("status", complaint.status)
    if status == Complaint.Status.RESOLVED:
        if "resolved_at" in data and data["resolved_at"] is None and complaint.resolved_at is not None:
            # Erasing the date of a resolved complaint would break "resolved iff dated"; reopening is explicit.
            raise ValidationError({"resolved_at": _(
                "A resolved complaint keeps its resolution date; to reopen it, set status to open or in_progress.")})
        if not (data.get("resolved_at") or complaint.resolved_at):
            data["resolved_at"] = timezone.now()
        resolved = data.get("resolved_at") or complaint.resolved_at
        opened = data.get("opened_at", complaint.opened_at)
        if opened and resolved < opened:
            raise ValidationError({"resolved_at": _("A complaint cannot be resolved before it was opened.")})
    else:
        if data.get("resolved_at"):
            raise ValidationError({"resolved_at": _(
                "Only a resolved complaint has a resolution date; set status to resolved.")})
        data["resolved_at"] = None


def _feedback_rules(feedback: Feedback, data: dict[str, Any]) -> None:
    validate_feedback_score(data.get("kind", feedback.kind), data.get("score", feedback.score))


RULES = {Complaint: _complaint_rules, Feedback: _feedback_rules}


def _save_new(*, actor: Actor, model: type[R], data: dict[str, Any]) -> R:
    record = model()
    RULES.get(model, lambda r, d: None)(record, data)
    for key, value in data.items():
        setattr(record, key, value)
    # The external_id's uniqueness is the database's to decide (record_create_once), not a racy pre-check.
    record.full_clean(exclude=["external_id"], validate_unique=False)
    record.save()
    audit_record(
        actor=actor, action=AuditEntry.Action.CREATE, instance=record,
        changes=fields_snapshot(record, FIELDS[model]), customer=record.customer,
    )
    return record


def record_create(*, actor: Actor, model: type[R], data: dict[str, Any]) -> R:
    return record_create_once(actor=actor, model=model, data=data)[0]


def record_create_once(*, actor: Actor, model: type[R], data: dict[str, Any]) -> tuple[R, bool]:
    """Create a record, idempotent by external_id: (record, created).

    The same payload again returns the stored record (also when both arrive at once: the unique constraint
    decides, and the loser answers as the second); different data under that external_id is a ConflictError.
    """
    data = {k: v for k, v in data.items() if v is not None or k in ("resolved_at", "agent", "owner")}
    key = data.get("external_id")
    if key and (existing := model.objects.filter(external_id=key).first()):
        return _same_or_conflict(model, existing, data), False
    try:
        with transaction.atomic():
            return _save_new(actor=actor, model=model, data=data), True
    except IntegrityError:
        existing = model.objects.filter(external_id=key).first() if key else None
        if existing is None:
            raise
        return _same_or_conflict(model, existing, data), False


def _same_or_conflict(model: type[R], existing: R, data: dict[str, Any]) -> R:
    differing = sorted(f for f, v in data.items() if f in FIELDS[model] and getattr(existing, f) != v)
    if differing:
        raise ConflictError(gettext(
            "A %(model)s with external_id '%(id)s' already exists with different %(fields)s.") % {
            "model": model._meta.verbose_name, "id": existing.external_id, "fields": ", ".join(differing)})
    return existing


@transaction.atomic
def record_update(*, actor: Actor, record: R, data: dict[str, Any]) -> R:
    model = type(record)
    record = model.objects.select_for_update().get(pk=record.pk)
    data = {k: v for k, v in data.items() if k not in ("external_id", "customer")}
    RULES.get(model, lambda r, d: None)(record, data)
    changes = apply_changes(record, data)
    if changes:
        record.full_clean(validate_unique=False)
        record.save()
        audit_record(actor=actor, action=AuditEntry.Action.UPDATE, instance=record, changes=changes, customer=record.customer)
    return record


@transaction.atomic
def record_upsert(*, actor: Actor, model: type[R], data: dict[str, Any], mutable: bool) -> tuple[Outcome, R]:
    """Import semantics by external_id: create, leave an identical record alone, update it (mutable
    records such as complaints) or refuse the change (immutable ones such as survey answers)."""
    existing = model.objects.select_for_update().filter(external_id=data["external_id"]).first()
    if existing is None:
        return "created", _save_new(actor=actor, model=model, data=data)
    if existing.customer_id != data["customer"].pk:
        raise ConflictError(gettext("'%(id)s' already belongs to another customer.") % {"id": data["external_id"]},
                            field="customer")
    wanted = {k: v for k, v in data.items() if k not in ("external_id", "customer")}
    differing = [k for k, v in wanted.items() if getattr(existing, k) != v]
    if not differing:
        return "unchanged", existing
    if not mutable:
        raise ConflictError(
            gettext("'%(id)s' already exists with different %(fields)s; it cannot change.") % {
                "id": data["external_id"], "fields": ", ".join(differing)},
            field=differing[0],
        )
    return "updated", record_update(actor=actor, record=existing, data=wanted)


def contact_create(*, actor: Actor, data: dict[str, Any]) -> Contact:
    return record_create(actor=actor, model=Contact, data=data)


def complaint_create(*, actor: Actor, data: dict[str, Any]) -> Complaint:
    return record_create(actor=actor, model=Complaint, data=data)


def feedback_create(*, actor: Actor, data: dict[str, Any]) -> Feedback:
    return record_create(actor=actor, model=Feedback, data=data)

