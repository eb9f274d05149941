"""The demo's months of work: agents working the win-back queue and touchpoints going out, simulated in the past.

`manage.py demo` (``demo_seed_with_activity``) seeds the demo's history with the last months' orders of the
customers who lapse, cancel or come back in those months held back (``demo_seed(hold_from=...)``; the
others' histories say the same whenever they are written), then plays those months day by day through the
product's own services, as a live system would have lived them: each day the orders placed since the day
before arrive (``orders_insert``), the lifecycle scan runs (it opens cases for new lapses, with the stored
holdout draw, and closes the cases of customers who ordered again: won after a contact or coupon, else
returned), agents claim the next case (``case_claim_next``) and record what happened
(``case_record_disposition``: reasons for leaving, offers and their coupons, callbacks, do-not-call,
complaints), callbacks are kept or missed, reached customers redeem their coupons in orders, and over the
last days the touchpoint outbox is materialised, dispatched and sent (``touchpoint_send``), some suppressed
by the product's rules, some answered through their survey links. The pace is a small team's (a few calls
a day, a bounded number of sends a day; what is left in the outbox goes back to it for the live worker),
so that the months play in well under a minute. The KPI page then reads every figure from
the same services as in production; nothing is written to the KPI tables directly.

Why a clock patch, and where: the queue, the lifecycle scan and the touchpoint services take ``now=``, and
the simulation passes it. A few writes they make read the clock themselves (``auto_now`` timestamps, the
instant a do-not-call or a survey answer is recorded, a complaint escalated from a call); run in 2026
about 2025 they would say "today". ``simulated_now`` patches ``django.utils.timezone.now`` (which
``timezone.localdate`` and the model fields' ``auto_now`` read) for the duration of one simulated action,
so every timestamp of that action is the simulated instant. It is used ONLY here, by the demo's
simulation, in a single-threaded management command: product code never runs under it. The alternative, a
``now=`` keyword threaded through every crm, winback and touchpoints service down to ``auto_now`` fields,
would change a dozen signatures for the demo's sake.

Deterministic for a seed: the customers' choices come from ``random.Random(seed)``; the database's own
random() (the lifecycle scan's holdout draw) is seeded for the simulation (``setseed`` on PostgreSQL, a
seeded function on SQLite). Coupon codes stay random (``secrets``: they must not be guessable).
While it runs, the pipeline's follow-up tasks are disconnected (``pipeline_paused``): the simulation
runs each follow-up itself, as of its own clock, instead of leaving hundreds of tasks for the worker to
run as of today. Emails "sent" in the past go to Django's in-memory backend: no file, no terminal, no
real address (the demo's addresses are example.com ones anyway).
"""

import contextlib
import dataclasses
import datetime as dt
import heapq
import logging
import random
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from decimal import Decimal
from unittest import mock
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.test.utils import override_settings
from django.urls import resolve
from django.utils import timezone
from tqdm import tqdm

from config.pipeline import PIPELINE, pipeline_connect
from core.roles import AGENTS
from crm.models import Customer
from crm.services.audit import Actor
from crm.services.demo_data import (
    DEMO_LOGINS, DEMO_PREFIX, DemoPlan, DemoSeedResult, demo_held_orders, demo_order_lines, demo_plan, demo_seed,
)
from crm.services.orders import OrderInput, orders_insert
from metrics.services.periods import add_months
from metrics.services.program import CALLBACK_ON_TIME
from touchpoints.models import Touchpoint
from touchpoints.services.dispatch import touchpoints_dispatch, touchpoints_unqueue
from touchpoints.services.links import feedback_record_from_link, score_links
from touchpoints.services.materialize import touchpoints_materialize
from touchpoints.services.rendering import SURVEY_OF_TEMPLATE
from touchpoints.services.sending import touchpoint_send
from touchpoints.services.transports import EmailTransport
from winback.models import LeaveReason, Offer, WinbackCase
from winback.services.calling_hours import zone_keys
from winback.services.cases import NotYourCase, case_release
from winback.services.lifecycle import lifecycle_scan
from winback.services.lifecycle_rules import lifecycle_compute
from winback.services.policy import policy_current, policy_params
from winback.services.queue import DispositionInput, case_claim_next, case_record_disposition

TURNS = ("lapsed", "cancelled", "reactivated")  # the events that open or close a win-back case
ORDERS_ACTOR = Actor(user=None, label="demo orders")
# The demo agent and two colleagues (no password: they cannot log in), so the agents table compares people.
COLLEAGUES = ["lina.haddad", "sam.taylor"]
SCAN_HOUR = 7  # the morning scan, before the agents start
WORKDAY = (dt.time(9, 0), dt.time(17, 30))  # business time zone
QUEUE_EMPTY_PAUSE = dt.timedelta(hours=1)
CALLBACK_HOURS = dt.timedelta(hours=12)  # from the start of the workday: callbacks booked up to 21:00 are made
CALLBACK_KEPT_SHARE = 0.75  # the booking agent calls back on time; the rest are missed (anyone takes them later)
TOUCHPOINT_HOUR = 12  # the outbox is worked once a day over the last touchpoint_days
SURVEY_ANSWER_SHARE = 0.3

# (outcome, weight) for a customer who will not order again soon, and for one who will.
OUTCOMES_STAYING_AWAY = [
    ("no_answer", 27), ("voicemail", 12), ("busy", 6), ("reached_declined", 20), ("reached_will_return", 13),
    ("callback_requested", 12), ("wrong_number", 3), ("do_not_call", 3), ("complaint_escalated", 4),
]
OUTCOMES_COMING_BACK = [("reached_will_return", 55), ("callback_requested", 10), ("no_answer", 20), ("voicemail", 15)]
# Why people say they left (names of the default LeaveReason rows; others are drawn evenly).
REASON_WEIGHTS = {"Price": 24, "Delivery": 16, "Product quality": 14, "Service or support": 12,
                  "Competitor offer": 12, "Felt unappreciated": 8, "Moved or no longer needed": 7, "Billing": 4,
                  "Other": 3}
NOTES = {
    "reached_will_return": ["Happy to try again with the offer.", "Had forgotten about us; will order this week.", ""],
    "reached_declined": ["Found a cheaper supplier.", "No longer needs the products.", "Still upset about the last delivery.", ""],
    "callback_requested": ["Busy now, asked for a call later.", ""],
    "complaint_escalated": ["Parcel never arrived; wants a refund first.", "Charged twice, not refunded."],
}


@dataclasses.dataclass
class ActivityResult:
    days: int = 0
    orders: int = 0
    won_back_orders: int = 0
    calls: int = 0
    releases: int = 0
    callbacks_kept: int = 0
    touchpoints: Counter = dataclasses.field(default_factory=Counter)
    answers: int = 0
    seconds: float = 0.0
    timings: dict = dataclasses.field(default_factory=dict)

    def summary(self) -> str:
        sent = ", ".join(f"{n} {k}" for k, n in sorted(self.touchpoints.items())) or "none"
        return (f"Simulated {self.days} days of work: {self.orders} orders placed ({self.won_back_orders} with a "
                f"win-back coupon), {self.calls} calls ({self.callbacks_kept} callbacks kept on time, "
                f"{self.releases} cases handed back), touchpoints {sent}, {self.answers} survey answers, "
                f"in {self.seconds:.1f}s.")


@contextlib.contextmanager
def simulated_now(instant: dt.datetime) -> Iterator[None]:
    """``django.utils.timezone.now`` returns ``instant`` inside the block (the demo's simulation only; see
    the module docstring)."""
    with mock.patch.object(timezone, "now", lambda: instant):
        yield


SENDING_LOGGER = "touchpoints.services.sending"


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    """The logger ``name`` says only warnings and errors inside the block."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def pipeline_paused() -> Iterator[None]:
    """The pipeline's follow-up tasks are not enqueued inside the block (the simulation does the follow-ups
    as of its own clock); connected again after it."""
    for signal, receiver in PIPELINE:
        signal.disconnect(receiver, dispatch_uid=f"pipeline.{receiver.__module__}.{receiver.__qualname__}")
    try:
        yield
    finally:
        pipeline_connect()


@contextlib.contextmanager
def database_random_seeded(seed: int) -> Iterator[None]:
    """The database's random() (the holdout draw of new cases) repeats for a seed."""
    connection.ensure_connection()
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("SELECT setseed(%s)", [(seed % 1000) / 1000])
        yield
        return
    rng, system = random.Random(seed), random.SystemRandom()
    raw = connection.connection
    raw.create_function("random", 0, lambda: rng.randint(-(2**63), 2**63 - 1))
    try:
        yield
    finally:
        # SQLite cannot drop an application function over a built-in one: unpredictable again instead.
        raw.create_function("random", 0, lambda: system.randint(-(2**63), 2**63 - 1))


def demo_agents_ensure() -> list[AbstractBaseUser]:
    """The demo agent (DEMO_LOGINS) and the colleagues who worked the queue with them."""
    User = get_user_model()
    group = Group.objects.get(name=AGENTS)
    agents = list(User.objects.filter(username__in=[u for u, _, g in DEMO_LOGINS if g == AGENTS]))
    for username in COLLEAGUES:
        user, created = User.objects.get_or_create(username=username, defaults={"email": f"{username}@example.com"})
        if created:
            user.set_unusable_password()
            user.save()
        user.groups.add(group)
        agents.append(user)
    return agents


def _at(day: dt.date, clock: dt.time, tz: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, clock, tzinfo=tz)


def demo_customers_to_hold(*, plan: DemoPlan, hold_from: dt.datetime, until: dt.datetime) -> set[str]:
    """The customers whose orders from ``hold_from`` on must arrive during the simulation: those who lapse,
    cancel or come back after it (by the current dormancy policy). Everyone else's history says the same
    whenever it is written, so it is written at once (most of the orders: the simulation places few)."""
    params = policy_params(policy_current())
    held = set()
    for p in plan.customers:
        orders = [at for at, _ in p.orders]
        events, _ = lifecycle_compute(orders=orders, acquired_at=orders[0] if orders else None,
                                      cancellations=[p.cancelled_at] if p.cancelled_at else [], policy=params, now=until)
        if any(kind in TURNS and at >= hold_from for kind, at in events):
            held.add(p.external_id)
    return held


class _Simulation:
    def __init__(self, *, plan: DemoPlan, seed: int, customers: int, until: dt.date, since: dt.date,
                 held: list[OrderInput], touchpoint_days: int, calls_per_day: int | None) -> None:
        self.tz = timezone.get_default_timezone()
        self.rng = random.Random(seed * 7919 + 15)
        self.until, self.since = until, since
        self.start = _at(since, dt.time(0), self.tz)
        self.end = _at(until, dt.time(0), self.tz)
        # The orders still to come, by time (won-back orders join them as agents win them).
        self.orders: dict[str, OrderInput] = {o.external_id: o for o in held}
        self.pending: list[tuple[dt.datetime, str]] = [(o.ordered_at, o.external_id) for o in held]
        heapq.heapify(self.pending)
        self.future: dict[str, list[str]] = defaultdict(list)  # customer -> external ids of their coming orders
        for o in held:
            self.future[o.customer].append(o.external_id)
        self.baskets = {p.external_id: (p.orders[0][1] if p.orders else Decimal("40.00")) for p in plan.customers}
        self.touch_from = until - dt.timedelta(days=touchpoint_days)
        # A small team's pace, not one sized to the base: the demo's months must play in seconds.
        self.calls_per_day = calls_per_day or max(3, customers // 1000)
        self.sends_per_day = max(40, customers // 40)
        self.timings: Counter = Counter()
        self.agents = demo_agents_ensure()
        reasons = list(LeaveReason.objects.filter(active=True).order_by("position", "id"))
        self.reasons = [(r.pk, REASON_WEIGHTS.get(r.name, 3)) for r in reasons]
        self.offers = list(Offer.objects.filter(active=True).order_by("name").values_list("pk", flat=True))
        self.result = ActivityResult()
        self.won_back = 0

    # --- orders -------------------------------------------------------------------------------------------

    def place_orders(self, *, before: dt.datetime) -> None:
        batch = []
        while self.pending and self.pending[0][0] < before:
            _, external_id = heapq.heappop(self.pending)
            order = self.orders.pop(external_id)
            self.future[order.customer].remove(external_id)
            batch.append(order)
        if batch:
            with simulated_now(before):
                orders_insert(actor=ORDERS_ACTOR, items=batch, all_or_nothing=True)
            self.result.orders += len(batch)

    def _next_order(self, customer: str, *, after: dt.datetime, within: dt.timedelta) -> OrderInput | None:
        for external_id in self.future.get(customer, ()):
            order = self.orders[external_id]
            if after < order.ordered_at <= after + within:
                return order
        return None

    def _redeem(self, *, customer: str, coupon_code: str, now: dt.datetime, valid_days: int) -> None:
        """The customer's next order within the coupon's validity carries its code; a reached customer with
        none coming sometimes orders because of the call (a won-back order of the simulation)."""
        order = self._next_order(customer, after=now, within=dt.timedelta(days=valid_days))
        if order is not None:
            self.orders[order.external_id] = dataclasses.replace(order, coupon_code=coupon_code)
            return
        if self.rng.random() >= 0.5:
            return
        at = now + dt.timedelta(days=self.rng.uniform(1, min(valid_days, 20)))
        if at >= self.end:
            return
        self.won_back += 1
        amount = (self.baskets.get(customer, Decimal("40.00")) * Decimal(f"{self.rng.uniform(0.8, 1.4):.2f}")).quantize(Decimal("0.01"))
        external_id = f"{DEMO_PREFIX}WB{self.won_back:06d}"
        order = OrderInput(external_id=external_id, customer=customer, ordered_at=at, amount=amount,
                           currency=settings.DEFAULT_CURRENCY, coupon_code=coupon_code,
                           lines=demo_order_lines(customer=customer, external_id=external_id, amount=amount))
        self.orders[order.external_id] = order
        self.future[customer].append(order.external_id)
        heapq.heappush(self.pending, (at, order.external_id))
        self.result.won_back_orders += 1

    # --- the queue ----------------------------------------------------------------------------------------

    def work_day(self, day: dt.date) -> None:
        start, stop = _at(day, WORKDAY[0], self.tz), _at(day, WORKDAY[1], self.tz)
        seconds = (stop - start).total_seconds()
        present = [i for i in range(len(self.agents)) if self.rng.random() >= 0.1] or [0]  # days off
        # (when, agent, a booked callback): callbacks are kept whatever else the agent was doing.
        slots = [(start + dt.timedelta(seconds=self.rng.uniform(0, seconds)), self.rng.choice(present), False)
                 for _ in range(self.calls_per_day)]
        by_id = {a.pk: i for i, a in enumerate(self.agents)}
        for callback_at, agent_id in (
                WinbackCase.objects.filter(status="open", callback_at__gte=start, callback_at__lt=start + CALLBACK_HOURS)
                .order_by("callback_at", "id").values_list("callback_at", "callback_agent")):
            if agent_id in by_id and self.rng.random() < CALLBACK_KEPT_SHARE:
                slots.append((callback_at + dt.timedelta(seconds=self.rng.uniform(0, 600)), by_id[agent_id], True))
        idle_until: dict[int, dt.datetime] = {}
        for now, index, callback in sorted(slots):
            if not callback and now < idle_until.get(index, now):
                continue
            if not self._call(self.agents[index], now):
                idle_until[index] = now + QUEUE_EMPTY_PAUSE  # nobody callable now: not again for a while

    def _call(self, agent: AbstractBaseUser, now: dt.datetime) -> bool:
        """One claim and, mostly, one recorded call; False when the queue had nobody callable."""
        with simulated_now(now):
            case = case_claim_next(agent=agent, now=now)
            if case is None:
                return False
            if self.rng.random() < 0.03:  # picked up, then handed back (a break, a wrong click)
                case_release(agent=agent, case_id=case.pk, now=now)
                self.result.releases += 1
                return True
            customer = case.customer
            kept = (case.callback_agent_id == agent.pk and case.callback_at is not None
                    and abs(case.callback_at - now) <= CALLBACK_ON_TIME)
            coming_back = self._next_order(customer.external_id, after=now, within=dt.timedelta(days=30)) is not None
            data = self._disposition(case, customer, now, coming_back=coming_back)
            try:
                disposition = case_record_disposition(agent=agent, case_id=case.pk, data=data, now=now)
            except ValidationError:  # e.g. a callback time the customer's zones do not all allow: no answer
                disposition = case_record_disposition(agent=agent, case_id=case.pk,
                                                      data=DispositionInput(outcome="no_answer"), now=now)
            except NotYourCase:
                return True
        self.result.calls += 1
        if kept:
            self.result.callbacks_kept += 1
        if disposition.coupon_id:
            coupon = disposition.coupon
            valid_days = max(1, (coupon.expires_at - now).days) if coupon.expires_at else 30
            self._redeem(customer=customer.external_id, coupon_code=coupon.code, now=now, valid_days=valid_days)
        return True

    def _disposition(self, case: WinbackCase, customer: Customer, now: dt.datetime, *, coming_back: bool) -> DispositionInput:
        rng = self.rng
        if case.kind == WinbackCase.Kind.CARE:
            outcome = _weighted(rng, [("reached_will_return", 60), ("reached_declined", 15), ("no_answer", 25)])
        else:
            outcome = _weighted(rng, OUTCOMES_COMING_BACK if coming_back else OUTCOMES_STAYING_AWAY)
        reason_id = offer_id = None
        callback_local = None
        if outcome in ("reached_will_return", "reached_declined") or (outcome == "callback_requested" and rng.random() < 0.3):
            reason_id = _weighted(rng, self.reasons) if self.reasons else None
        if self.offers and case.kind == WinbackCase.Kind.WINBACK and (
                (outcome == "reached_will_return" and rng.random() < 0.75) or (outcome == "reached_declined" and rng.random() < 0.2)):
            offer_id = rng.choice(self.offers)
        if outcome == "callback_requested":
            zones = zone_keys(customer.call_zones) or [customer.timezone or str(self.tz)]
            local_day = now.astimezone(ZoneInfo(zones[0])).date() + dt.timedelta(days=rng.randint(1, 3))
            callback_local = dt.datetime.combine(local_day, dt.time(rng.randint(10, 16), rng.choice([0, 15, 30, 45])))
        note = rng.choice(NOTES.get(outcome, [""]))
        return DispositionInput(outcome=outcome, reason_id=reason_id, note=note, callback_local=callback_local,
                                offer_id=offer_id)

    # --- touchpoints --------------------------------------------------------------------------------------

    def work_outbox(self, day: dt.date) -> None:
        now = _at(day, dt.time(TOUCHPOINT_HOUR), self.tz)
        with simulated_now(now), override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
            touchpoints_materialize(now=now)
            with transaction.atomic():
                due = [i for batch in touchpoints_dispatch(now=now) for i in batch]
            # A bounded share is sent in the simulation (each send renders and writes its contact); the rest
            # go back to the outbox, as after a refused enqueue, for the next tick (the live worker's).
            touchpoints_unqueue(touchpoint_ids=due[self.sends_per_day:])
            transport = EmailTransport()
            try:
                for touchpoint_id in due[:self.sends_per_day]:
                    outcome = touchpoint_send(touchpoint_id=touchpoint_id, now=now, transport=transport)
                    self.result.touchpoints[outcome] += 1
                    if outcome == "sent":
                        self._maybe_answer(touchpoint_id, now)
            finally:
                transport.close()
                mail.outbox = []

    def _maybe_answer(self, touchpoint_id: int, now: dt.datetime) -> None:
        template = Touchpoint.objects.filter(pk=touchpoint_id).values_list("step__template", flat=True).first()
        kind = SURVEY_OF_TEMPLATE.get(template or "")
        if kind is None or self.rng.random() >= SURVEY_ANSWER_SHARE:
            return
        links = score_links(touchpoint_id=touchpoint_id, kind=kind)
        # Answers lean the way the seeded surveys do: mostly content, some unhappy.
        link = links[min(len(links) - 1, int(len(links) * self.rng.betavariate(4, 1.6)))]
        token = resolve(urlsplit(link["url"]).path).kwargs["token"]
        with simulated_now(now + dt.timedelta(hours=self.rng.uniform(0.2, 5))):
            feedback_record_from_link(token=token)
        self.result.answers += 1

    # --- the whole run ------------------------------------------------------------------------------------

    def run(self, *, progress: bool) -> ActivityResult:
        started = time.monotonic()
        days = [self.since + dt.timedelta(days=d) for d in range((self.until - self.since).days)]
        for day in tqdm(days, desc="simulating", unit="day", disable=not progress, file=sys.stderr):
            scan_at = _at(day, dt.time(SCAN_HOUR), self.tz)
            t0 = time.monotonic()
            self.place_orders(before=scan_at)
            t1 = time.monotonic()
            with simulated_now(scan_at):
                lifecycle_scan(now=scan_at)
            t2 = time.monotonic()
            if day.weekday() < 5:
                self.work_day(day)
            t3 = time.monotonic()
            if day >= self.touch_from:
                self.work_outbox(day)
            self.timings.update(orders=t1 - t0, scans=t2 - t1, calls=t3 - t2, outbox=time.monotonic() - t3)
        self.place_orders(before=self.end)
        self.result.days = len(days)
        self.result.seconds = time.monotonic() - started
        self.result.timings = {k: round(v, 1) for k, v in self.timings.items()}
        return self.result


def _weighted(rng: random.Random, pairs):
    return rng.choices([p[0] for p in pairs], weights=[p[1] for p in pairs])[0]


@dataclasses.dataclass
class DemoSetupResult:
    seeded: DemoSeedResult
    activity: ActivityResult | None


@transaction.atomic
def demo_seed_with_activity(*, seed: int, customers: int, years: int, until: dt.date, months: int,
                            touchpoint_days: int = 3, calls_per_day: int | None = None,
                            progress: bool = False) -> DemoSetupResult:
    """On an empty database: the demo's data (``demo_seed``) with the last ``months`` (whole months before
    ``until``'s) played by the simulation (see the module docstring); nothing on a database with customers.

    One transaction: an interrupted run leaves the database empty, and the next run starts again."""
    if months <= 0 or customers <= 0 or Customer.objects.exists():
        return DemoSetupResult(demo_seed(seed=seed, customers=customers, years=years, until=until, progress=progress,
                                         if_empty=True), None)
    since = add_months(until.replace(day=1), -months)
    plan = demo_plan(seed=seed, customers=customers, years=years, until=until)
    hold_from = _at(since, dt.time(0), timezone.get_default_timezone())
    hold = demo_customers_to_hold(plan=plan, hold_from=hold_from, until=_at(until, dt.time(0), hold_from.tzinfo))
    seeded = demo_seed(seed=seed, customers=customers, years=years, until=until, progress=progress, if_empty=True,
                       plan=plan, hold_from=hold_from, hold_customers=hold)
    held = demo_held_orders(plan, hold_from=hold_from, customers=hold)
    # The past's sends log nothing: one line per email is for the live worker's sends, after the banner.
    with pipeline_paused(), database_random_seeded(seed), _quiet(SENDING_LOGGER):
        activity = _Simulation(plan=plan, seed=seed, customers=customers, until=until, since=since, held=held,
                               touchpoint_days=touchpoint_days, calls_per_day=calls_per_day).run(progress=progress)
    return DemoSetupResult(seeded, activity)

