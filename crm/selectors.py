import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.db.models import Min, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy as _

from core.dialect import is_postgresql
from core.isolation import label, list_isolated, sentence_isolated
from core.locale_format import date_local, money_local
from core.sql import render
from crm import timeline
from crm.models import AuditEntry, Complaint, Contact, Customer, Feedback, Order, OrderLine
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

    @property
    def rhythm_count(self) -> int:
        """The whole number that picks the plural form of "every N days" (the days themselves have a decimal)."""
        return round(self.rhythm_days or 0)


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
        # Translators: the separator between the values of a list in an audit line.
        return gettext(", ").join(_readable(None, v) for v in value)
    if isinstance(value, dict):
        return gettext(", ").join(gettext("%(field)s: %(new)s") % {"field": k, "new": _readable(None, v)}
                                  for k, v in value.items())
    if model_field is not None and model_field.choices:
        return str(dict(model_field.flatchoices).get(value, value))
    if isinstance(value, str) and model_field is not None and model_field.get_internal_type() == "DateTimeField":
        try:
            instant = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
        if timezone.is_aware(instant):
            instant = timezone.localtime(instant)
        # Translators: a date and a time of day in an audit line, e.g. "2026-12-01 14:05".
        return gettext("%(date)s %(time)s") % {"date": date_local(value=instant), "time": f"{instant:%H:%M}"}
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


# The describers give a line of HTML, each datum isolated (core/isolation.py).


def _order(order: Order) -> tuple[str, str]:
    amount = money_local(amount=order.amount, currency=order.currency)
    # Each "2 x Tea" is a datum of its own in the list.
    lines = [str(line) for line in _lines_of(order)]
    data: dict[str, Any] = {"amount": amount, "id": order.external_id}
    if lines:
        data["lines"] = list_isolated(lines)
    if order.coupon_code:
        data["code"] = order.coupon_code
    templates = {
        # Translators: a line of the customer's timeline; amount is e.g. "€80.00".
        (False, True): gettext("%(amount)s, order %(id)s, coupon %(code)s"),
        # Translators: a line of the customer's timeline; amount is e.g. "€80.00".
        (False, False): gettext("%(amount)s, order %(id)s"),
        # Translators: a line of the customer's timeline; amount is e.g. "€30.00", lines e.g. "2 x Tea; 1 x Mug".
        (True, True): gettext("%(amount)s, order %(id)s (%(lines)s), coupon %(code)s"),
        # Translators: a line of the customer's timeline; amount is e.g. "€30.00", lines e.g. "2 x Tea; 1 x Mug".
        (True, False): gettext("%(amount)s, order %(id)s (%(lines)s)"),
    }
    return gettext("Order"), sentence_isolated(templates[(bool(lines), bool(order.coupon_code))], **data)


def _orders_with_lines(customer_id: int) -> QuerySet[Order]:
    """The customer's orders, each with its lines as JSON in one subquery: the timeline stays one query per
    source, which a prefetch (a second query) would not."""
    if is_postgresql():
        lines = render("SELECT json_agg(json_build_array(l.quantity, l.product_name, l.product_id)"
                       " ORDER BY l.position)::text FROM {line} l WHERE l.order_id = {order}.id",
                       line=OrderLine, order=Order)
    else:
        # SQLite aggregates in the order the inner query gives.
        lines = render("SELECT json_group_array(json_array(x.quantity, x.product_name, x.product_id)) FROM"
                       " (SELECT quantity, product_name, product_id FROM {line} WHERE order_id = {order}.id"
                       " ORDER BY position) x", line=OrderLine, order=Order)
    return Order.objects.filter(customer_id=customer_id).annotate(lines_json=RawSQL(lines, []))


def _lines_of(order: Order) -> list[OrderLine]:
    if not hasattr(order, "lines_json"):
        return list(order.lines.all())
    rows = json.loads(order.lines_json) if order.lines_json else []
    return [OrderLine(quantity=quantity, product_name=name, product_id=product_id)
            for quantity, name, product_id in rows]


def _contact(contact: Contact) -> tuple[str, str]:
    # One whole sentence per shape (with or without a direction, an agent, details) so each language can
    # order the parts its own way.
    data: dict[str, Any] = {"channel": label(contact.get_channel_display())}
    if contact.direction != Contact.Direction.INTERNAL:
        data["direction"] = label(contact.get_direction_display())
    if contact.agent_id:
        data["who"] = contact.agent.get_username()
    details: list[Any] = [label(contact.get_outcome_display())] if contact.outcome else []
    if contact.notes:
        details.append(_clip(contact.notes, 80))
    key = ("direction" in data, "who" in data, bool(details))
    templates = {
        # Translators: a contact on the customer's timeline, e.g. "Call (Outbound) by anna: No answer".
        (True, True, True): gettext("%(channel)s (%(direction)s) by %(who)s: %(details)s"),
        (True, True, False): gettext("%(channel)s (%(direction)s) by %(who)s"),
        (True, False, True): gettext("%(channel)s (%(direction)s): %(details)s"),
        (True, False, False): gettext("%(channel)s (%(direction)s)"),
        (False, True, True): gettext("%(channel)s by %(who)s: %(details)s"),
        (False, True, False): gettext("%(channel)s by %(who)s"),
        (False, False, True): gettext("%(channel)s: %(details)s"),
        (False, False, False): "%(channel)s",
    }
    if details:
        # The outcome is a label of ours, the note the agent's own words: each isolated on its own.
        data["details"] = list_isolated(details)
    text = sentence_isolated(templates[key], **data)
    return (gettext("Call") if contact.channel == Contact.Channel.CALL else gettext("Contact")), text


def _complaint_opened(complaint: Complaint) -> tuple[str, str]:
    # Translators: a complaint on the customer's timeline, e.g. "Delivery, severity: High, now: Open: Parcel lost".
    return gettext("Complaint opened"), sentence_isolated(
        gettext("%(category)s, severity: %(severity)s, now: %(status)s: %(summary)s"),
        category=label(complaint.get_category_display()), severity=label(complaint.get_severity_display()),
        status=label(complaint.get_status_display()), summary=_clip(complaint.summary, 80))


def _complaint_resolved(complaint: Complaint) -> tuple[str, str]:
    # Translators: a resolved complaint on the customer's timeline: its category, then how it was resolved.
    return gettext("Complaint resolved"), sentence_isolated(gettext("%(category)s: %(resolution)s"),
                                                    category=label(complaint.get_category_display()),
                                                    resolution=_clip(complaint.resolution or complaint.summary, 100))


def _feedback(feedback: Feedback) -> tuple[str, str]:
    if feedback.comment:
        # Translators: a survey answer on the customer's timeline, e.g. "NPS (0-10): score 3 (Slow delivery)".
        text = sentence_isolated(gettext("%(kind)s: score %(score)s (%(comment)s)"), kind=label(feedback.get_kind_display()),
                         score=feedback.score, comment=_clip(feedback.comment, 80))
    else:
        text = sentence_isolated(gettext("%(kind)s: score %(score)s"), kind=label(feedback.get_kind_display()), score=feedback.score)
    return gettext("Feedback"), text


def _consent(entry: AuditEntry) -> tuple[str, str]:
    changed = {k: v for k, v in entry.changes.items() if k in CONSENT_KEYS}
    parts = []
    for line in audit_change_lines(entity=entry.entity, changes=changed):
        if line.old is None:
            parts.append(sentence_isolated(gettext("%(field)s: %(new)s"), field=label(line.field), new=line.new))
        else:
            parts.append(sentence_isolated(gettext("%(field)s changed from %(old)s to %(new)s"), field=label(line.field),
                                   old=line.old, new=line.new))
    data: dict[str, Any] = {"changes": list_isolated(parts), "who": entry.actor_label}
    if entry.changes.get("reason"):
        data["reason"] = _clip(str(entry.changes["reason"]), 80)
        # Translators: a consent change on the customer's timeline: what changed, who changed it, and why.
        template = gettext("%(changes)s (by %(who)s): %(reason)s")
    else:
        # Translators: a consent change on the customer's timeline: what changed and who changed it.
        template = gettext("%(changes)s (by %(who)s)")
    return gettext("Consent changed"), sentence_isolated(template, **data)


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
                                    build=_orders_with_lines)
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
