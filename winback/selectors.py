import datetime as dt

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from core.db import fetch_all, field_value, instances
from core.sql import column_list, render
from crm.models import Complaint, Contact, Customer, Order
from predictions.models import CustomerPrediction
from winback.models import (
    CallSettings, Disposition, DormancyPolicy, LeaveReason, LifecycleEvent, Offer, RuleTuning, WinbackCase,
)
from winback.services.calling_hours import zone_info, zone_keys


def customer_lifecycle_events(*, customer: Customer) -> QuerySet[LifecycleEvent]:
    return LifecycleEvent.objects.filter(customer=customer).order_by("occurred_at", "id")


def case_list() -> QuerySet[WinbackCase]:
    return WinbackCase.objects.select_related("customer").order_by("-opened_at", "-id")


# The card's statements (prepared on PostgreSQL: the card is built on every claim). Indexes: the customer's
# primary key; order_customer_time; complaint_customer_status; contact_customer_time; the disposition's case
# key and case_customer_time; the reason and offer tables are small.
_CARD_CUSTOMER = render("SELECT {columns} FROM {customer} WHERE id = %(customer)s",
                        columns=column_list(Customer), customer=Customer)
_CARD_ORDERS = render(
    "SELECT {columns}, (SELECT MIN(ordered_at) FROM {order} WHERE customer_id = %(customer)s)"
    " FROM {order} WHERE customer_id = %(customer)s ORDER BY ordered_at DESC LIMIT 5",
    columns=column_list(Order), order=Order)
# Every open complaint, and the five latest resolved ones.
_CARD_COMPLAINTS = render(
    "SELECT {columns} FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY status = 'resolved'"
    " ORDER BY opened_at DESC, id DESC) AS n FROM {complaint} WHERE customer_id = %(customer)s) x"
    " WHERE status <> 'resolved' OR n <= 5 ORDER BY opened_at DESC, id DESC",
    columns=column_list(Complaint), complaint=Complaint)
_CARD_CONTACTS = render(
    "SELECT {columns} FROM {contact} WHERE customer_id = %(customer)s ORDER BY occurred_at DESC, id DESC LIMIT 10",
    columns=column_list(Contact), contact=Contact)
_CARD_REASONS_GIVEN = render(
    "SELECT {dispositions}, {reasons} FROM {disposition} d"
    " JOIN {case} c ON c.id = d.case_id JOIN {reason} r ON r.id = d.reason_id"
    " WHERE c.customer_id = %(customer)s ORDER BY d.created_at DESC, d.id DESC LIMIT 5",
    dispositions=column_list(Disposition, "d"), reasons=column_list(LeaveReason, "r"), disposition=Disposition,
    case=WinbackCase, reason=LeaveReason)
_CARD_PREDICTION = render("SELECT {columns} FROM {prediction} WHERE customer_id = %(customer)s",
                          columns=column_list(CustomerPrediction), prediction=CustomerPrediction)
_ACTIVE_REASONS = render("SELECT {columns} FROM {reason} WHERE active = %(yes)s ORDER BY position, name",
                         columns=column_list(LeaveReason), reason=LeaveReason)
_ACTIVE_OFFERS = render("SELECT {columns} FROM {offer} WHERE active = %(yes)s ORDER BY name",
                        columns=column_list(Offer), offer=Offer)


def case_card(*, case: WinbackCase, now: dt.datetime | None = None) -> dict:
    """Everything an agent needs on one screen for a call, and nothing more.

    Read with a handful of plain statements (prepared on PostgreSQL) instead of the ORM: the card is built
    on every claim, and the ORM's query building cost more than the reads themselves.
    """
    now = now or timezone.now()
    me = {"customer": case.customer_id}
    customer = instances(Customer, fetch_all(_CARD_CUSTOMER, me))[0]
    case.customer = customer
    zone_name = zone_keys(customer.call_zones)[0]
    zone = zone_info(zone_name) or dt.timezone.utc
    rows = fetch_all(_CARD_ORDERS, me)
    orders = instances(Order, rows)
    first = field_value(Order._meta.get_field("ordered_at"), rows[0][-1]) if rows else None
    rhythm = None
    if customer.order_count > 1 and first and customer.last_order_at:
        rhythm = round((customer.last_order_at - first).total_seconds() / 86400 / (customer.order_count - 1), 1)
    complaints = instances(Complaint, fetch_all(_CARD_COMPLAINTS, me))
    contacts = instances(Contact, fetch_all(_CARD_CONTACTS, me))
    rows = fetch_all(_CARD_REASONS_GIVEN, me)
    earlier = instances(Disposition, rows)
    for disposition, reason in zip(earlier, instances(LeaveReason, rows, start=len(Disposition._meta.concrete_fields))):
        disposition.reason = reason
    prediction = next(iter(instances(CustomerPrediction, fetch_all(_CARD_PREDICTION, me))), None)
    if prediction is not None:
        prediction.p_alive_percent = round(prediction.p_alive * 100)
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
        "prediction": prediction,
        "days_since_last_order": (now - customer.last_order_at).days if customer.last_order_at else None,
        "recent_orders": orders,
        "open_complaints": [c for c in complaints if c.status != Complaint.Status.RESOLVED],
        "past_complaints": [c for c in complaints if c.status == Complaint.Status.RESOLVED],
        "contacts": contacts,
        "earlier_reasons": earlier,
        "reasons": instances(LeaveReason, fetch_all(_ACTIVE_REASONS, {"yes": True})),
        "offers": instances(Offer, fetch_all(_ACTIVE_OFFERS, {"yes": True})),
    }


CALL_GUIDE = [
    "Greet them by name and say who you are calling from.",
    "Ask why they stopped ordering, and listen: let them finish.",
    "Apologise for what went wrong and assure them it will not happen again.",
    "Propose a concrete plan: what you will do, and by when.",
    "Offer an incentive to come back (choose an offer below: a code is issued for them).",
    "Tell them what has improved since they last ordered.",
]


def agent_callbacks(*, agent: AbstractBaseUser) -> QuerySet[WinbackCase]:
    return (WinbackCase.objects.filter(callback_agent=agent, status="open", callback_at__isnull=False)
            .select_related("customer").order_by("callback_at"))


def agent_cases_visible(*, user: AbstractBaseUser) -> QuerySet[WinbackCase]:
    """What an agent may see: the case they hold and the ones they booked a callback for."""
    return WinbackCase.objects.filter(Q(claimed_by=user) | Q(callback_agent=user), status="open")


def held_case_call_zones(*, agent: AbstractBaseUser, case_id: int) -> str | None:
    """The call zones of the customer of an open case the agent holds; None when they do not hold it."""
    return (WinbackCase.objects.filter(pk=case_id, claimed_by=agent, status="open")
            .values_list("customer__call_zones", flat=True).first())


def agent_callbacks_local(*, agent: AbstractBaseUser) -> list[dict]:
    """The agent's booked callbacks, each with the customer's zone to show the time as agreed."""
    return [{"case": c, "local": c.callback_at, "zone": zone_keys(c.customer.call_zones)[0]}
            for c in agent_callbacks(agent=agent)]


def agent_last_coupon(*, agent, within_minutes: int = 60):
    """The coupon the agent issued last (within the hour), to read out again if the banner was missed."""
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


def tuning_latest() -> RuleTuning | None:
    """The latest backtest of the lapse rules on our own orders (winback/services/rule_tuning.py)."""
    return RuleTuning.objects.order_by("-id").first()
