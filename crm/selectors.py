import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.db.models import Min, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy as _

from crm import timeline
from crm.models import AuditEntry, Complaint, Contact, Customer, Feedback, Order
from crm.services.privacy import CONSENT_KEYS
from crm.validators import phone_time_zones


# --- The customer page's summary ---------------------------------------------------------------------------

@dataclass(frozen=True)
class CustomerSummary:
    customer: Customer
    rhythm_days: float | None  # the mean days between orders (docs/metrics.md s.1), None before a second order
    first_order_at: dt.datetime | None
    last_order: Order | None
    days_since_last_order: int | None
    lifetime_value: Decimal
    currency: str
    prediction: Any  # the predictions app's row (by its related name), or None
    facts: list[timeline.Fact]  # what the apps above crm add (the open case and who holds it)


def customer_summary(*, customer: Customer, now: dt.datetime | None = None) -> CustomerSummary:
    """The read-only head of the customer page: a handful of queries, whatever the history."""
    now = now or timezone.now()
    orders = Order.objects.filter(customer_id=customer.pk)
    last = orders.order_by("-ordered_at", "-id").first()
    first = orders.aggregate(first=Min("ordered_at"))["first"] if customer.order_count > 1 else None
    rhythm = None
    if first is not None and last is not None and customer.order_count > 1:
        rhythm = round((last.ordered_at - first).total_seconds() / 86400 / (customer.order_count - 1), 1)
    return CustomerSummary(
        customer=customer, rhythm_days=rhythm, first_order_at=first, last_order=last,
        days_since_last_order=(now - last.ordered_at).days if last else None,
        lifetime_value=customer.total_spent, currency=last.currency if last else settings.DEFAULT_CURRENCY,
        # The predictions app's row by its related name: crm imports nothing of predictions.
        prediction=getattr(customer, "prediction", None),
        facts=timeline.summary_facts(customer),
    )


# --- Audit rows, readable ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ChangeLine:
    field: str  # the field's verbose name (or the key, for what is not a field: a reason)
    old: str | None  # None on a create: only the new value was recorded
    new: str


def audit_change_lines(*, entity: str, changes: dict[str, Any]) -> list[ChangeLine]:
    """An audit row's {field: [old, new]} (on create, {field: new}) as lines people read: the fields'
    verbose names, choices by their labels, instants in the business time zone."""
    try:
        model = apps.get_model(entity)
    except (LookupError, ValueError):
        model = None
    lines = []
    for key, value in (changes or {}).items():
        model_field = _model_field(model, key)
        label = str(model_field.verbose_name) if model_field is not None else key.replace("_", " ")
        if isinstance(value, list) and len(value) == 2 and not isinstance(value[0], (list, dict)):
            old, new = value
            lines.append(ChangeLine(label[:1].upper() + label[1:], _readable(model_field, old), _readable(model_field, new)))
        else:
            lines.append(ChangeLine(label[:1].upper() + label[1:], None, _readable(model_field, value)))
    return lines


def _model_field(model, name: str):
    if model is None:
        return None
    try:
        return model._meta.get_field(name)
    except FieldDoesNotExist:
        return None


def _readable(model_field, value: Any) -> str:
    if value is None or value == "":
        return gettext("(empty)")
    if isinstance(value, bool):
        return gettext("yes") if value else gettext("no")
    if isinstance(value, list):
        return ", ".join(_readable(None, v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_readable(None, v)}" for k, v in value.items())
    if model_field is not None and model_field.choices:
        return str(dict(model_field.flatchoices).get(value, value))
    if isinstance(value, str) and model_field is not None and model_field.get_internal_type() == "DateTimeField":
        try:
            instant = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
        if timezone.is_aware(instant):
            instant = timezone.localtime(instant)
        return f"{instant:%Y-%m-%d %H:%M}"
    text = str(value)
    return text if len(text) <= 200 else text[:199] + "…"


# --- The customer's timeline: crm's sources (winback and touchpoints add theirs in their ready()) ----------

def customer_timeline(*, customer_id: int, kind: str = "", page: int = 1,
                      per_page: int = timeline.PER_PAGE, errors: list[str] | None = None) -> timeline.TimelinePage:
    """One page of everything about the customer, newest first; ``kind`` "" for every type."""
    return timeline.customer_timeline_page(customer_id=customer_id, kinds=[kind] if kind else [], page=page,
                                           per_page=per_page, errors=errors)


def _clip(text: str, most: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= most else text[:most - 1] + "…"


def _order(order: Order) -> tuple[str, str]:
    text = gettext("%(amount)s %(currency)s, order %(id)s") % {
        "amount": order.amount, "currency": order.currency, "id": order.external_id}
    if order.coupon_code:
        text += ", " + gettext("coupon %(code)s") % {"code": order.coupon_code}
    return gettext("Order"), text


def _contact(contact: Contact) -> tuple[str, str]:
    head = contact.get_channel_display()
    if contact.direction != Contact.Direction.INTERNAL:
        head += ", " + contact.get_direction_display().lower()
    if contact.agent_id:
        head += " " + gettext("by %(who)s") % {"who": contact.agent.get_username()}
    details = [str(contact.get_outcome_display())] if contact.outcome else []
    if contact.notes:
        details.append(_clip(contact.notes, 80))
    text = head + (": " + "; ".join(details) if details else "")
    return (gettext("Call") if contact.channel == Contact.Channel.CALL else gettext("Contact")), text


def _complaint_opened(complaint: Complaint) -> tuple[str, str]:
    return gettext("Complaint opened"), gettext("%(category)s, %(severity)s severity, now %(status)s: %(summary)s") % {
        "category": complaint.get_category_display(), "severity": complaint.get_severity_display().lower(),
        "status": complaint.get_status_display().lower(), "summary": _clip(complaint.summary, 80)}


def _complaint_resolved(complaint: Complaint) -> tuple[str, str]:
    return gettext("Complaint resolved"), "%s: %s" % (
        complaint.get_category_display(), _clip(complaint.resolution or complaint.summary, 100))


def _feedback(feedback: Feedback) -> tuple[str, str]:
    text = gettext("%(kind)s: score %(score)s") % {"kind": feedback.get_kind_display(), "score": feedback.score}
    if feedback.comment:
        text += " (" + _clip(feedback.comment, 80) + ")"
    return gettext("Feedback"), text


def _consent(entry: AuditEntry) -> tuple[str, str]:
    changed = {k: v for k, v in entry.changes.items() if k in CONSENT_KEYS}
    parts = []
    for line in audit_change_lines(entity=entry.entity, changes=changed):
        if line.old is None:
            parts.append(gettext("%(field)s: %(new)s") % {"field": line.field, "new": line.new})
        else:
            parts.append(gettext("%(field)s changed from %(old)s to %(new)s") % {
                "field": line.field, "old": line.old, "new": line.new})
    text = "; ".join(parts) + " " + gettext("(by %(who)s)") % {"who": entry.actor_label}
    if entry.changes.get("reason"):
        text += ": " + _clip(str(entry.changes["reason"]), 80)
    return gettext("Consent changed"), text


def _consent_rows(customer_id: int) -> QuerySet[AuditEntry]:
    return AuditEntry.objects.filter(customer_id=customer_id, entity="crm.customer").filter(
        Q(changes__has_any_keys=list(CONSENT_KEYS)))


def _plain_contacts(customer_id: int) -> QuerySet[Contact]:
    contacts = Contact.objects.filter(customer_id=customer_id).select_related("agent")
    for claimed in timeline.claimed_contact_ids(customer_id):
        contacts = contacts.exclude(pk__in=claimed)
    return contacts


timeline.timeline_kind_register(key="orders", label=_("Orders"), position=10)
timeline.timeline_kind_register(key="calls", label=_("Calls and contacts"), position=40)
timeline.timeline_kind_register(key="complaints", label=_("Complaints"), position=60)
timeline.timeline_kind_register(key="feedback", label=_("Feedback"), position=70)
timeline.timeline_kind_register(key="consent", label=_("Consent"), position=80)
timeline.timeline_queryset_register(name="crm.orders", kind="orders", at="ordered_at", describe=_order,
                                    build=lambda cid: Order.objects.filter(customer_id=cid))
timeline.timeline_queryset_register(name="crm.contacts", kind="calls", at="occurred_at", describe=_contact,
                                    build=_plain_contacts)
timeline.timeline_queryset_register(name="crm.complaints_opened", kind="complaints", at="opened_at",
                                    describe=_complaint_opened, build=lambda cid: Complaint.objects.filter(customer_id=cid))
timeline.timeline_queryset_register(
    name="crm.complaints_resolved", kind="complaints", at="resolved_at", describe=_complaint_resolved,
    build=lambda cid: Complaint.objects.filter(customer_id=cid, resolved_at__isnull=False))
timeline.timeline_queryset_register(name="crm.feedback", kind="feedback", at="responded_at", describe=_feedback,
                                    build=lambda cid: Feedback.objects.filter(customer_id=cid))
timeline.timeline_queryset_register(name="crm.consent", kind="consent", at="at", describe=_consent, build=_consent_rows)


def customer_audit(*, customer: Customer, limit: int = 50) -> QuerySet[AuditEntry]:
    return AuditEntry.objects.filter(customer=customer).select_related("actor").order_by("-at", "-id")[:limit]


def customer_time_zones(*, customer: Customer) -> list[str]:
    """The customer's zone, or every zone their phone number may be in when none is recorded."""
    return [customer.timezone] if customer.timezone else phone_time_zones(customer.phone)


def customer_list(*, filters: dict[str, Any] | None = None) -> QuerySet[Customer]:
    return Customer.objects.all().order_by("id")


def customer_get(*, external_id: str) -> Customer | None:
    return Customer.objects.filter(external_id=external_id).first()
