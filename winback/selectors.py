import datetime as dt
import functools
import operator
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models
from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from django.utils.translation import get_language, get_language_info, gettext_lazy
from django.utils.translation import gettext as _

from core.content import content_text, content_texts, language_base
from core.isolation import sentence_isolated
from core.db import fetch_all, field_value, instances
from core.locale_format import date_local
from core.sql import column_list, render
from crm.models import Complaint, Contact, Customer, Feedback, Order
from predictions.models import CustomerPrediction
from winback.models import (
    CallSettings, CaseEvent, CouponReservation, Disposition, DormancyPolicy, LeaveReason, LifecycleEvent, Offer,
    RuleTuning, WinbackCase,
)
from winback.services.calling_hours import callback_presets, inside_calling_hours, open_zones, zone_info, zone_keys


def language_code(*, locale: str) -> str:
    """The base language of a locale tag as the content tables key it: "fa-IR" -> "fa"."""
    return language_base(locale) or "en"


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
    # Reasons for leaving are read by the agent: in the agent's language, not the customer's.
    reason_names = content_texts(objects=[d.reason for d in earlier], field="name", language=get_language() or "en")
    for disposition in earlier:
        disposition.reason_text = reason_names.get(disposition.reason.pk, disposition.reason.name)
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
        "rhythm_days_whole": round(rhythm) if rhythm is not None else None,  # picks the plural form
        "customer_language_code": language_code(locale=customer.locale),
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
    gettext_lazy("Greet them by name and say who you are calling from."),
    gettext_lazy("Ask why they stopped ordering, and listen: let them finish."),
    gettext_lazy("Apologise for what went wrong and assure them it will not happen again."),
    gettext_lazy("Propose a concrete plan: what you will do, and by when."),
    gettext_lazy("Offer an incentive to come back (choose an offer below: its code shows at once, to read out)."),
    gettext_lazy("Tell them what has improved since they last ordered."),
]
# A recovery call opens with the complaint, before any word about coming back.
RECOVERY_GUIDE = [
    gettext_lazy("Greet them by name, say who you are calling from and that you are calling about their complaint."),
    gettext_lazy("Say what the complaint is (above) and ask how things stand now; let them finish."),
    gettext_lazy("Apologise, and say what has been done or will be done about it, and by when."),
    gettext_lazy("Only once it is put right, offer an incentive to come back (choose an offer below)."),
    gettext_lazy("Book a callback to check it was fixed, or escalate the complaint if it is not."),
]
# A care call (an unhappy customer who has not left): listen and put it right; no win-back pitch.
CARE_GUIDE = [
    gettext_lazy("Greet them by name and say who you are calling from."),
    gettext_lazy("Say why you are calling (above): thank them for telling us, and ask what went wrong."),
    gettext_lazy("Listen, apologise, and agree on what will be done, and by when."),
    gettext_lazy("If it needs more than this call, escalate the complaint."),
]
# The survey scores that make a customer unhappy, by kind: NPS 0-6 (a detractor), CSAT 1-2, CES 5-7.
LOW_SCORES = {Feedback.Kind.NPS: Q(kind="nps", score__lte=6), Feedback.Kind.CSAT: Q(kind="csat", score__lte=2),
              Feedback.Kind.CES: Q(kind="ces", score__gte=5)}
# How far back a low score explains a care call.
CARE_FEEDBACK_DAYS = 180


def call_guide(*, case: WinbackCase, open_complaints: list[Complaint], now: dt.datetime) -> dict[str, Any]:
    """The guide for this call: a recovery call opens with the open complaint, a care call says why it
    was asked for (a low survey score, an open complaint), a plain win-back call keeps CALL_GUIDE.

    Returns {"kind": "winback" | "recovery" | "care", "why": [lines to open with], "steps": [...]}."""
    # Translators: a line of the call guide: the complaint's category, the day it was opened, its summary.
    complaints = [sentence_isolated(_("%(category)s complaint, opened %(date)s: %(summary)s"),
                                    category=c.get_category_display(), date=date_local(value=c.opened_at),
                                    summary=c.summary)
                  for c in open_complaints]
    if case.kind == WinbackCase.Kind.CARE:
        low = (Feedback.objects.filter(customer_id=case.customer_id, responded_at__lte=now,
                                       responded_at__gte=case.opened_at - dt.timedelta(days=CARE_FEEDBACK_DAYS))
               .filter(functools.reduce(operator.or_, LOW_SCORES.values())).order_by("-responded_at", "-id").first())
        why: list[str] = []
        if low is not None:
            facts = {"kind": low.kind.upper(), "score": low.score, "date": date_local(value=low.responded_at)}
            why.append(sentence_isolated(_("Low %(kind)s score: %(score)s on %(date)s. They wrote: “%(comment)s”"),
                                         **facts, comment=low.comment) if low.comment
                       else sentence_isolated(_("Low %(kind)s score: %(score)s on %(date)s."), **facts))
        why += complaints
        if not why:
            why.append(_("A care call was asked for (an unhappy customer); ask how we can help."))
        return {"kind": "care", "why": why, "steps": CARE_GUIDE}
    if case.is_recovery and complaints:
        return {"kind": "recovery", "why": complaints, "steps": RECOVERY_GUIDE}
    return {"kind": "winback", "why": [], "steps": CALL_GUIDE}


def customer_language(*, locale: str) -> str:
    """The customer's language, named for the agent: "Hungarian (magyar)", or the tag as stored."""
    for code in (locale, locale.split("-")[0].lower()):
        try:
            info = get_language_info(code)
        except KeyError:
            continue
        name, local = str(info["name_translated"]), info["name_local"]
        return name if name == local else f"{name} ({local})"
    return locale


# --- The agent's desk: the hold, the queue, the day's figures -----------------------------------------------

QUEUE_DEPTH_CAP = 1000  # counted up to here ("1000+"): the page is read on every claim


def queue_depth(*, rules: CallSettings, now: dt.datetime | None = None) -> int:
    """How many cases are callable now (docs/design.md: open, not held out, a phone and no do-not-call,
    calling hours in the customer's zones, attempts left, the gap over, nobody holding them), up to
    QUEUE_DEPTH_CAP. A case whose gap, callback time or lease is over counts before the queue wakes it."""
    now = now or timezone.now()
    zones = open_zones(now=now, start=rules.calling_start, end=rules.calling_end)
    callable_cases = (
        WinbackCase.objects.filter(status=WinbackCase.Status.OPEN, holdout=False, attempts__lt=rules.max_attempts,
                                   customer__do_not_call_since__isnull=True, customer__suppressed_at__isnull=True)
        .exclude(customer__phone="")
        .filter(Q(ready=True) | Q(ready=False, next_call_at__lte=now))
        .filter(Q(callback_at__isnull=True) | Q(callback_at__lte=now))
    )
    one_zone = Q(customer__call_zones__in=zones)
    if settings.TIME_ZONE in zones:
        one_zone |= Q(customer__call_zones="")
    depth = callable_cases.filter(one_zone)[:QUEUE_DEPTH_CAP].count()
    # Customers in several zones are few: their hours are tested here, as the claim does.
    several = callable_cases.filter(customer__call_zones__contains=",").values_list("customer__call_zones", flat=True)
    depth += sum(inside_calling_hours(call_zones=z, now=now, start=rules.calling_start, end=rules.calling_end)
                 for z in several[:QUEUE_DEPTH_CAP])
    return min(depth, QUEUE_DEPTH_CAP)


REACHED = [Contact.Outcome.REACHED_WILL_RETURN, Contact.Outcome.REACHED_DECLINED, Contact.Outcome.CALLBACK_REQUESTED,
           Contact.Outcome.COMPLAINT_ESCALATED, Contact.Outcome.DO_NOT_CALL]
# How each of the agent's own figures is computed (shown beside them, as every figure must say).
AGENT_TODAY_NOTES = {
    "calls": gettext_lazy("calls you recorded today (business time zone)"),
    "reached": gettext_lazy("of those, a conversation: will return, declined, callback, complaint, do not call"),
    "callbacks": gettext_lazy("calls you saved today as a callback requested"),
    "coupons": gettext_lazy("calls you saved today with an offer (a coupon issued)"),
    "won": gettext_lazy("cases closed as won today (an order within the attribution window) that you called"),
}


def agent_today(*, agent: AbstractBaseUser, now: dt.datetime | None = None) -> dict[str, int]:
    """The agent's own figures for today (the business time zone's day), from their saved calls and the
    cases' events; AGENT_TODAY_NOTES says how each is computed."""
    now = now or timezone.now()
    zone = zone_info(settings.TIME_ZONE) or dt.timezone.utc
    start = dt.datetime.combine(now.astimezone(zone).date(), dt.time(0), tzinfo=zone)
    end = dt.datetime.combine(start.date() + dt.timedelta(days=1), dt.time(0), tzinfo=zone)
    figures = Disposition.objects.filter(agent=agent, created_at__gte=start, created_at__lt=end).aggregate(
        calls=Count("id"), reached=Count("id", filter=Q(outcome__in=REACHED)),
        callbacks=Count("id", filter=Q(outcome=Contact.Outcome.CALLBACK_REQUESTED)),
        coupons=Count("id", filter=Q(coupon__isnull=False)))
    called = Disposition.objects.filter(agent=agent).values("case_id")
    figures["won"] = (CaseEvent.objects.filter(kind=CaseEvent.Kind.CLOSED, to_status=WinbackCase.Status.WON,
                                               at__gte=start, at__lt=end, case_id__in=called)
                      .values("case_id").distinct().count())
    return figures


def case_claimed_at(*, case: WinbackCase, agent: AbstractBaseUser) -> dt.datetime | None:
    """When the agent's current hold on the case began (its latest claim event)."""
    return (CaseEvent.objects.filter(case=case, kind=CaseEvent.Kind.CLAIMED, agent=agent)
            .order_by("-at", "-id").values_list("at", flat=True).first())


def case_coupon_reservation(*, case: WinbackCase, agent: AbstractBaseUser) -> CouponReservation | None:
    """The code reserved for the offer the agent chose on this call and has not saved yet."""
    return CouponReservation.objects.filter(case=case, agent=agent).select_related("offer").first()


def case_callback_presets(*, customer: Customer, rules: CallSettings,
                          now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """The callback presets beside the callback field (calling_hours.callback_presets), labelled, each
    with the value the field takes."""
    labels = {"in_an_hour": _("In 1 hour"), "tomorrow_morning": _("Tomorrow morning"),
              "same_time_tomorrow": _("Same time tomorrow")}
    presets = callback_presets(call_zones=customer.call_zones, now=now or timezone.now(), start=rules.calling_start,
                               end=rules.calling_end)
    return [{"key": key, "label": labels[key], "value": f"{local:%Y-%m-%dT%H:%M}", "local": local}
            for key, local in presets.items() if local is not None]


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
    rows = []
    for c in agent_callbacks(agent=agent):
        zone = zone_keys(c.customer.call_zones)[0]
        # The day and hour as agreed with the customer, in their zone (not the agent's).
        local = c.callback_at.astimezone(zone_info(zone) or dt.timezone.utc)
        rows.append({"case": c, "local": c.callback_at, "zone": zone, "local_date": local.date(),
                     "local_time": local.time()})
    return rows


def agent_last_coupon(*, agent, within_minutes: int = 60):
    """The coupon the agent issued last (within the hour), to read out again if the banner was missed."""
    d = (Disposition.objects.filter(agent=agent, coupon__isnull=False,
                                    created_at__gte=timezone.now() - dt.timedelta(minutes=within_minutes))
         .select_related("coupon__offer", "coupon__customer").order_by("-created_at").first())
    if d is None:
        return None
    coupon = d.coupon
    # The offer as it was read out: in the customer's language.
    coupon.offer_text = content_text(obj=coupon.offer, field="name", language=language_code(
        locale=coupon.customer.locale)) if coupon.offer_id else ""
    return coupon


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
