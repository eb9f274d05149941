from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models
from django.db.models import QuerySet
from django.utils.translation import gettext as _

from crm.models import Customer
from winback.models import CallSettings, DormancyPolicy, LifecycleEvent, Offer, WinbackCase


def customer_lifecycle_events(*, customer: Customer) -> QuerySet[LifecycleEvent]:
    return LifecycleEvent.objects.filter(customer=customer).order_by("occurred_at", "id")


def case_list() -> QuerySet[WinbackCase]:
    return WinbackCase.objects.select_related("customer").order_by("-opened_at", "-id")


def case_card(*, case: WinbackCase, now=None) -> dict:
    """Everything an agent needs on one screen for a call, and nothing more.

    Read with a handful of plain statements (prepared on PostgreSQL) instead of the ORM: the card is built
    on every claim, and the ORM's query building cost more than the reads themselves.
    """
    import datetime as dt

    from django.conf import settings
    from django.utils import timezone

    from core.db import columns, fetch_all, field_value, instances
    from crm.models import Complaint, Contact, Order
    from winback.models import Disposition, LeaveReason, Offer
    from winback.services.calling_hours import zone_info, zone_keys

    now = now or timezone.now()
    me = {"customer": case.customer_id}
    customer = instances(Customer, fetch_all(f"SELECT {columns(Customer)} FROM crm_customer WHERE id = %(customer)s", me))[0]
    case.customer = customer
    zone_name = zone_keys(customer.call_zones)[0]
    zone = zone_info(zone_name) or dt.timezone.utc
    rows = fetch_all(
        f"SELECT {columns(Order)}, (SELECT MIN(ordered_at) FROM crm_order WHERE customer_id = %(customer)s)"
        " FROM crm_order WHERE customer_id = %(customer)s ORDER BY ordered_at DESC LIMIT 5", me)
    orders = instances(Order, rows)
    first = field_value(Order._meta.get_field("ordered_at"), rows[0][-1]) if rows else None
    rhythm = None
    if customer.order_count > 1 and first and customer.last_order_at:
        rhythm = round((customer.last_order_at - first).total_seconds() / 86400 / (customer.order_count - 1), 1)
    # Every open complaint, and the five latest resolved ones.
    complaints = instances(Complaint, fetch_all(
        f"SELECT {columns(Complaint)} FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY status = 'resolved'"
        " ORDER BY opened_at DESC, id DESC) AS n FROM crm_complaint WHERE customer_id = %(customer)s) x"
        " WHERE status <> 'resolved' OR n <= 5 ORDER BY opened_at DESC, id DESC", me))
    contacts = instances(Contact, fetch_all(
        f"SELECT {columns(Contact)} FROM crm_contact WHERE customer_id = %(customer)s"
        " ORDER BY occurred_at DESC, id DESC LIMIT 10", me))
    rows = fetch_all(
        f"SELECT {columns(Disposition, 'd')}, {columns(LeaveReason, 'r')} FROM winback_disposition d"
        " JOIN winback_winbackcase c ON c.id = d.case_id JOIN winback_leavereason r ON r.id = d.reason_id"
        " WHERE c.customer_id = %(customer)s ORDER BY d.created_at DESC, d.id DESC LIMIT 5", me)
    earlier = instances(Disposition, rows)
    for disposition, reason in zip(earlier, instances(LeaveReason, rows, start=len(Disposition._meta.concrete_fields))):
        disposition.reason = reason
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
        "open_complaints": [c for c in complaints if c.status != Complaint.Status.RESOLVED],
        "past_complaints": [c for c in complaints if c.status == Complaint.Status.RESOLVED],
        "contacts": contacts,
        "earlier_reasons": earlier,
        "reasons": instances(LeaveReason, fetch_all(
            f"SELECT {columns(LeaveReason)} FROM winback_leavereason WHERE active = %(yes)s ORDER BY position, name", {"yes": True})),
        "offers": instances(Offer, fetch_all(
            f"SELECT {columns(Offer)} FROM winback_offer WHERE active = %(yes)s ORDER BY name", {"yes": True})),
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


# --- Settings health ---------------------------------------------------------------------------------------

def settings_problems() -> list[str]:
    """What is wrong with the calling and win-back settings in use: the current dormancy policy, the call
    settings and the active offers, one line each (the admin and /health/ show them). A row stored before
    a bound existed may hold what the model refuses today; the engine then skips or refuses it."""
    problems: list[str] = []
    policy = DormancyPolicy.objects.order_by("-id").first()
    if policy is not None:
        problems += row_problems(policy, label=_("Dormancy policy v%(version)s") % {"version": policy.pk})
    calls = CallSettings.objects.filter(pk=1).first()
    if calls is not None:
        problems += row_problems(calls, label=_("Call settings"))
    for offer in Offer.objects.filter(active=True).order_by("name", "id"):
        problems += row_problems(offer, label=_("Offer “%(name)s”") % {"name": offer.name})
    return problems


def row_problems(row: models.Model, *, label: str) -> list[str]:
    """What the model's own validation (its fields' bounds and its clean()) says of a stored row, one
    line per message. Relations are not checked: the database holds them."""
    relations = [f.name for f in row._meta.concrete_fields if f.is_relation]
    try:
        row.full_clean(exclude=relations, validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        return [_problem_line(row, label=label, field=field, message=message)
                for field, messages in exc.message_dict.items() for message in messages]
    return []


def _problem_line(row: models.Model, *, label: str, field: str, message: str) -> str:
    if field == NON_FIELD_ERRORS:
        return _("%(label)s: %(message)s") % {"label": label, "message": message}
    return _("%(label)s: %(field)s is %(value)s. %(message)s") % {
        "label": label, "field": row._meta.get_field(field).verbose_name, "value": getattr(row, field), "message": message}
