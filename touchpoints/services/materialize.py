"""Turn what happened (orders, lifecycle events, resolved complaints, detractors, anniversaries) into
outbox rows: every step of the matching cadences, each with its due time.

Each trigger is one query for what is new since the previous run (with an overlap, for transactions that
committed late), read in pages, inserted in batches with ON CONFLICT DO NOTHING on the idempotency key:
running it twice, concurrently or after a crash adds nothing. Steps already too late to be worth sending
(a backfilled order from last year) are not created at all.
"""

import datetime as dt
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from crm.models import Complaint, Customer, Feedback, Order
from touchpoints.models import Cadence, CadenceStep, Touchpoint, TouchpointScanState
from touchpoints.services.sending import touchpoint_limits
from winback.models import LifecycleEvent

log = logging.getLogger(__name__)
OVERLAP = dt.timedelta(hours=2)  # a transaction may commit this long after its rows were stamped
ORDER_OVERLAP = dt.timedelta(minutes=10)  # orders are many: re-read only the last few minutes' ids
FIRST_LOOKBACK = dt.timedelta(days=1)
PAGE = 2_000
Trigger = Cadence.Trigger


@dataclass
class Anchor:
    customer_id: int
    at: dt.datetime
    key: str  # unique per trigger instance, e.g. "o123" (order 123) or "c5:m10" (customer 5's 10th order)
    label: str  # "order:123", "milestone:10": what the message is about


@dataclass
class MaterializeResult:
    created: dict[str, int] = field(default_factory=dict)
    # What could not be computed ("cadence 3", "cadence 3, step 7") and why; the others still ran.
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.created.values())


def touchpoints_materialize(*, now: dt.datetime | None = None) -> MaterializeResult:
    now = now or timezone.now()
    with transaction.atomic():
        state, _ = TouchpointScanState.objects.select_for_update().get_or_create(pk=1)
        since = (state.last_run_at or now - FIRST_LOOKBACK) - OVERLAP
        today = timezone.localdate(now)
        daily = state.last_daily_on != today
        order_floor = _order_id_floor(state, now)
        state.last_run_at = now
        state.save(update_fields=["last_run_at", "order_marks"])
    stale = touchpoint_limits().stale_after
    result = MaterializeResult()
    cadences = Cadence.objects.filter(enabled=True).prefetch_related("steps")
    for cadence in cadences:
        steps = [s for s in cadence.steps.all() if s.enabled and _offset_usable(s, now=now, stale=stale, result=result)]
        if not steps:
            continue
        # Rows stored before the settings were bounded may hold values no date can take (an interval, an
        # audience, a window): that cadence is skipped and reported, the others still run.
        try:
            window = max(s.offset for s in steps) + stale  # older triggers can only produce stale steps
            anchors = _anchors(cadence, since=since, now=now, window=window, daily=daily, steps=steps, order_floor=order_floor)
            if anchors is not None:
                result.created[f"{cadence.trigger}:{cadence.pk}"] = _insert(anchors, steps, now=now, stale=stale)
        except (OverflowError, ValueError) as exc:
            _skip(result, f"cadence {cadence.pk}", exc)
    if daily:
        # Only once the day's work is done: a run that failed half-way leaves it to the next run.
        TouchpointScanState.objects.filter(pk=1).update(last_daily_on=today)
    return result


def _offset_usable(step: CadenceStep, *, now: dt.datetime, stale: dt.timedelta, result: MaterializeResult) -> bool:
    """Whether the step's offset gives a due time from any trigger of the window around now; a step that
    cannot (an old row beyond the bounds) is left out and reported, and its cadence's other steps run."""
    try:
        now - (step.offset + stale)  # where _anchors starts reading triggers
        now + step.offset  # the latest due time _insert computes from a trigger up to now
    except (OverflowError, ValueError) as exc:
        _skip(result, f"cadence {step.cadence_id}, step {step.pk}", exc)
        return False
    return True


def _skip(result: MaterializeResult, what: str, exc: Exception) -> None:
    log.warning("touchpoints: %s skipped, its dates cannot be computed: %s", what, exc)
    result.skipped[what] = f"{type(exc).__name__}: {exc}"


def _order_id_floor(state: TouchpointScanState, now: dt.datetime) -> int:
    """New orders are found by id (the primary key, always indexed), not by their order time: an order
    reported hours or days late still gets its messages. The floor is the highest id seen by a run at least
    ORDER_OVERLAP ago, so an import transaction that commits its rows a little late is still covered."""
    top = Order.objects.order_by("-id").values_list("id", flat=True).first() or 0
    marks = [(at, mark) for at, mark in state.order_marks if dt.datetime.fromisoformat(at) > now - 2 * ORDER_OVERLAP]
    old_enough = [mark for at, mark in marks if dt.datetime.fromisoformat(at) <= now - ORDER_OVERLAP]
    if old_enough:
        floor = max(old_enough)
    elif state.order_marks:
        floor = min(mark for _, mark in state.order_marks)
    else:
        floor = 0  # first run: every order (the freshness window below keeps it to recent ones)
    state.order_marks = [*marks, (now.isoformat(), top)][-200:]
    return floor


def _insert(anchors: Iterable[Anchor], steps: list[CadenceStep], *, now: dt.datetime, stale: dt.timedelta) -> int:
    created = 0
    batch: list[Touchpoint] = []
    for anchor in anchors:
        for step in steps:
            due = anchor.at + step.offset
            if now - due > stale:
                continue
            batch.append(Touchpoint(
                customer_id=anchor.customer_id, step=step, channel=step.channel, anchor_at=anchor.at,
                anchor=anchor.label, due_at=due, idempotency_key=f"{anchor.key}:s{step.pk}",
            ))
        if len(batch) >= PAGE:
            created += _flush(batch)
            batch = []
    return created + _flush(batch)


def _flush(batch: list[Touchpoint]) -> int:
    if not batch:
        return 0
    keys = [t.idempotency_key for t in batch]
    with transaction.atomic():
        before = Touchpoint.objects.filter(idempotency_key__in=keys).count()
        Touchpoint.objects.bulk_create(batch, ignore_conflicts=True)
        return Touchpoint.objects.filter(idempotency_key__in=keys).count() - before


def _audience(cadence: Cadence, prefix: str = "") -> Q:
    q = Q(**{f"{prefix}order_count__gte": cadence.min_orders}) if cadence.min_orders else Q()
    if cadence.min_total_spent:
        q &= Q(**{f"{prefix}total_spent__gte": cadence.min_total_spent})
    if cadence.locale_list():
        # "ar" reaches ar, AR and ar-EG customers alike (as the templates do); "pt-br" reaches pt-BR.
        by_locale = Q()
        for locale in cadence.locale_list():
            by_locale |= Q(**{f"{prefix}locale__iexact": locale}) | Q(**{f"{prefix}locale__istartswith": f"{locale}-"})
        q &= by_locale
    return q


def _pages(qs: QuerySet, fields: list[str]) -> Iterator[tuple]:
    yield from qs.values_list(*fields).iterator(chunk_size=PAGE)


def _anchors(cadence: Cadence, *, since: dt.datetime, now: dt.datetime, window: dt.timedelta, daily: bool,
             steps: list[CadenceStep], order_floor: int) -> Iterator[Anchor] | None:
    trigger = cadence.trigger
    if trigger == Trigger.ORDER:
        return _order_anchors(cadence, order_floor=order_floor, now=now, window=window)
    if trigger == Trigger.MILESTONE:
        return _milestone_anchors(cadence, order_floor=order_floor, now=now, window=window)
    if trigger in (Trigger.AT_RISK, Trigger.LAPSED):
        kinds = ["at_risk"] if trigger == Trigger.AT_RISK else ["lapsed", "cancelled"]
        events = (LifecycleEvent.objects
                  .filter(kind__in=kinds, occurred_at__gte=now - window, occurred_at__lte=now, created_at__gte=since)
                  .filter(customer__in=Customer.objects.filter(_audience(cadence))))
        return (Anchor(c, at, f"c{c}:{k}{int(at.timestamp())}", k)
                for c, k, at in _pages(events, ["customer_id", "kind", "occurred_at"]))
    if trigger == Trigger.COMPLAINT_RESOLVED:
        complaints = Complaint.objects.filter(
            status=Complaint.Status.RESOLVED, resolved_at__gte=now - window, resolved_at__lte=now, updated_at__gte=since,
        ).filter(_audience(cadence, "customer__"))
        return (Anchor(c, at, f"k{pk}", f"complaint:{pk}") for pk, c, at in _pages(complaints, ["pk", "customer_id", "resolved_at"]))
    if trigger == Trigger.NPS_DETRACTOR:
        answers = Feedback.objects.filter(
            kind=Feedback.Kind.NPS, score__lte=6, responded_at__gte=now - window, responded_at__lte=now, created_at__gte=since,
        ).filter(_audience(cadence, "customer__"))
        return (Anchor(c, at, f"f{pk}", f"feedback:{pk}") for pk, c, at in _pages(answers, ["pk", "customer_id", "responded_at"]))
    if trigger == Trigger.ANNIVERSARY:
        return _anniversary_anchors(cadence, now=now) if daily else None
    if trigger == Trigger.CHECKIN:
        return _checkin_seeds(cadence, now=now, steps=steps) if daily else None
    return None


def _new_orders(cadence: Cadence, *, order_floor: int, now: dt.datetime, window: dt.timedelta) -> QuerySet:
    return Order.objects.filter(id__gt=order_floor, ordered_at__gte=now - window, ordered_at__lte=now).filter(
        customer__in=Customer.objects.filter(_audience(cadence)))


def _order_anchors(cadence: Cadence, *, order_floor: int, now: dt.datetime, window: dt.timedelta) -> Iterator[Anchor]:
    orders = _new_orders(cadence, order_floor=order_floor, now=now, window=window)
    return (Anchor(c, at, f"o{pk}", f"order:{pk}") for pk, c, at in _pages(orders, ["pk", "customer_id", "ordered_at"]))


def _milestone_anchors(cadence: Cadence, *, order_floor: int, now: dt.datetime, window: dt.timedelta) -> Iterator[Anchor]:
    # The order's number in the customer's history, ties broken by id (the order_customer_time index).
    earlier = (Order.objects.filter(customer_id=OuterRef("customer_id"))
               .filter(Q(ordered_at__lt=OuterRef("ordered_at")) | Q(ordered_at=OuterRef("ordered_at"), id__lte=OuterRef("id")))
               .order_by().values("customer_id").annotate(n=Count("id")).values("n"))
    orders = (_new_orders(cadence, order_floor=order_floor, now=now, window=window).annotate(number=Subquery(earlier))
              .filter(number__in=cadence.milestone_numbers()))
    return (Anchor(c, at, f"c{c}:m{n}", f"milestone:{n}") for c, at, n in _pages(orders, ["customer_id", "ordered_at", "number"]))


def _anniversary_anchors(cadence: Cadence, *, now: dt.datetime) -> Iterator[Anchor]:
    """Customers whose acquisition anniversary (business time zone) is today; 29 February is celebrated on
    28 February in other years."""
    today = timezone.localdate(now)
    days = [today.day]
    leap = today.year % 4 == 0 and (today.year % 100 != 0 or today.year % 400 == 0)
    if today.month == 2 and today.day == 28 and not leap:
        days.append(29)
    customers = Customer.objects.filter(
        _audience(cadence), acquired_at__month=today.month, acquired_at__day__in=days, acquired_at__year__lt=today.year)
    for pk, acquired in _pages(customers, ["pk", "acquired_at"]):
        local = timezone.localtime(acquired)
        years = today.year - local.year
        at = local.replace(year=today.year, day=min(local.day, 28) if local.month == 2 and local.day == 29 and not leap else local.day)
        yield Anchor(pk, at, f"c{pk}:y{today.year}", f"anniversary:{years}")


def _checkin_seeds(cadence: Cadence, *, now: dt.datetime, steps: list[CadenceStep]) -> Iterator[Anchor]:
    """The first check-in of each customer in the audience with none pending; later ones are scheduled when
    one is sent (sending.py). The first is due one interval after their last order, or now if that passed."""
    interval = dt.timedelta(days=cadence.interval_days)
    pending = Touchpoint.objects.filter(
        step__in=steps, customer_id=OuterRef("pk"),
    ).filter(Q(status__in=["scheduled", "sending"]) | Q(status="sent", sent_at__gte=now - interval))
    customers = Customer.objects.filter(_audience(cadence), ~Exists(pending), status__in=["active", "at_risk"])
    for pk, last in _pages(customers, ["pk", "last_order_at"]):
        due = max(now, (last or now) + interval)
        yield Anchor(pk, due, f"c{pk}:ci{due:%Y%m%d}", "checkin")
