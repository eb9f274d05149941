from django.db.models import QuerySet

from crm.models import Customer
from winback.models import LifecycleEvent, WinbackCase


def customer_lifecycle_events(*, customer: Customer) -> QuerySet[LifecycleEvent]:
    return LifecycleEvent.objects.filter(customer=customer).order_by("occurred_at", "id")


def case_list() -> QuerySet[WinbackCase]:
    return WinbackCase.objects.select_related("customer").order_by("-opened_at", "-id")


def case_card(*, case: WinbackCase, now=None) -> dict:
    from django.conf import settings

    """Everything an agent needs on one screen for a call, and nothing more."""
    import datetime as dt

    from django.utils import timezone

    from crm.models import Complaint, Contact, Order
    from winback.models import Disposition, LeaveReason, Offer
    from winback.services.calling_hours import zone_info, zone_keys

    now = now or timezone.now()
    customer = case.customer
    zone_name = zone_keys(customer.call_zones)[0]
    zone = zone_info(zone_name) or dt.timezone.utc
    orders = list(Order.objects.filter(customer=customer).order_by("-ordered_at")[:5])
    first = Order.objects.filter(customer=customer).order_by("ordered_at").values_list("ordered_at", flat=True).first()
    rhythm = None
    if customer.order_count > 1 and first and customer.last_order_at:
        rhythm = round((customer.last_order_at - first).total_seconds() / 86400 / (customer.order_count - 1), 1)
    return {
        "case": case,
        "customer": customer,
        "local_time": now.astimezone(zone),
        "currency": settings.DEFAULT_CURRENCY,
        "zone": zone_name,
        "several_zones": "," in customer.call_zones,
        "lifetime_value": customer.total_spent,
        "order_count": customer.order_count,
        "rhythm_days": rhythm,
        "days_since_last_order": (now - customer.last_order_at).days if customer.last_order_at else None,
        "recent_orders": orders,
        "open_complaints": list(Complaint.objects.filter(customer=customer).exclude(status="resolved").order_by("-opened_at")),
        "past_complaints": list(Complaint.objects.filter(customer=customer, status="resolved").order_by("-opened_at")[:5]),
        "contacts": list(Contact.objects.filter(customer=customer).select_related("agent").order_by("-occurred_at")[:10]),
        "earlier_reasons": list(
            Disposition.objects.filter(case__customer=customer, reason__isnull=False)
            .select_related("reason", "agent").order_by("-created_at")[:5]
        ),
        "reasons": list(LeaveReason.objects.filter(active=True)),
        "offers": list(Offer.objects.filter(active=True)),
    }


CALL_GUIDE = [
    "Greet them by name and say who you are calling from.",
    "Ask why they stopped ordering, and listen: let them finish.",
    "Apologise for what went wrong and assure them it will not happen again.",
    "Propose a concrete plan: what you will do, and by when.",
    "Offer an incentive to come back (choose an offer below: a code is issued for them).",
    "Tell them what has improved since they last ordered.",
]


def agent_callbacks_local(*, agent) -> list[dict]:
    """The agent's booked callbacks, each with the customer's zone to show the time as agreed."""
    from winback.services.calling_hours import zone_keys
    from winback.services.queue import agent_callbacks

    return [{"case": c, "local": c.callback_at, "zone": zone_keys(c.customer.call_zones)[0]}
            for c in agent_callbacks(agent=agent)]


def agent_last_coupon(*, agent, within_minutes: int = 60):
    """The coupon the agent issued last (within the hour), to read out again if the banner was missed."""
    import datetime as dt

    from django.utils import timezone

    from winback.models import Disposition

    d = (Disposition.objects.filter(agent=agent, coupon__isnull=False,
                                    created_at__gte=timezone.now() - dt.timedelta(minutes=within_minutes))
         .select_related("coupon__offer", "coupon__customer").order_by("-created_at").first())
    return d.coupon if d else None
