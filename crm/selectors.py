from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from crm.models import AuditEntry, Complaint, Contact, Customer, Feedback, Order
from crm.validators import phone_time_zones


@dataclass(frozen=True)
class TimelineItem:
    at: datetime
    kind: str
    summary: str
    obj: Any


def customer_timeline(*, customer: Customer, limit: int = 100) -> list[TimelineItem]:
    """Orders, contacts, complaints, feedback and audit entries of one customer, newest first."""
    items: list[TimelineItem] = []
    for o in Order.objects.filter(customer=customer).order_by("-ordered_at")[:limit]:
        items.append(TimelineItem(o.ordered_at, "order", f"{o.amount} {o.currency}{' coupon ' + o.coupon_code if o.coupon_code else ''} ({o.external_id})", o))
    for c in Contact.objects.filter(customer=customer).select_related("agent").order_by("-occurred_at")[:limit]:
        who = f" by {c.agent.get_username()}" if c.agent else ""
        items.append(TimelineItem(c.occurred_at, "contact", f"{c.get_channel_display()} {c.get_direction_display().lower()}{who}: {c.get_outcome_display() or '-'} {c.notes[:80]}", c))
    for c in Complaint.objects.filter(customer=customer).order_by("-opened_at")[:limit]:
        items.append(TimelineItem(c.opened_at, "complaint", f"[{c.get_status_display()}] {c.get_category_display()}, {c.get_severity_display()}: {c.summary[:80]}", c))
        if c.resolved_at:
            items.append(TimelineItem(c.resolved_at, "complaint resolved", c.resolution[:100] or c.summary[:80], c))
    for f in Feedback.objects.filter(customer=customer).order_by("-responded_at")[:limit]:
        items.append(TimelineItem(f.responded_at, "feedback", f"{f.get_kind_display()}: {f.score} {f.comment[:80]}", f))
    if customer.cancelled_at:
        items.append(TimelineItem(customer.cancelled_at, "cancellation", "Cancelled", customer))
    items.sort(key=lambda i: i.at, reverse=True)
    return items[:limit]


def customer_audit(*, customer: Customer, limit: int = 50) -> QuerySet[AuditEntry]:
    return AuditEntry.objects.filter(customer=customer).select_related("actor").order_by("-at", "-id")[:limit]


def customer_time_zones(*, customer: Customer) -> list[str]:
    """The customer's zone, or every zone their phone number may be in when none is recorded."""
    return [customer.timezone] if customer.timezone else phone_time_zones(customer.phone)


def customer_list(*, filters: dict[str, Any] | None = None) -> QuerySet[Customer]:
    return Customer.objects.all().order_by("id")


def customer_get(*, external_id: str) -> Customer | None:
    return Customer.objects.filter(external_id=external_id).first()
