"""Send one touchpoint, at most once.

Three short steps, each its own transaction where it writes:

1. claim: lock the customer row (a customer's sends are serialised, so the frequency cap counts what is in
   flight), move the touchpoint from scheduled (or from sending with an expired lease: a killed worker) to
   sending with a lease, and decide by the rules (rules.py) what happens: send, suppress, cancel, defer;
2. send, outside any transaction (the SMTP conversation, the SMS provider);
3. mark it sent, with its Contact on the customer's timeline, if we still hold it.

A temporary error (the mail server down, a 4xx reply) puts it back with a retry_at, for the retry window
(_retry_or_fail); until it has gone, newer touchpoints to the same customer on the same channel wait behind
it (older_retrying), so that after an outage a customer's messages arrive in order.

A second dispatcher, a redelivered task or ten concurrent calls find nothing to claim. The one window for a
duplicate is a worker killed after the server accepted the message and before step 3 commits: the lease
expires and it is sent again. The Message-ID stays the same across attempts, so duplicates can be
recognised downstream.
"""

import datetime as dt
import email.utils
import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import Case, F, Q, QuerySet, Value, When
from django.utils import timezone

from core.cache import Recent
from crm.models import AuditEntry, Complaint, Contact, Customer, Order
from crm.services.audit import Actor, audit_bulk
from crm.services.records import contact_create
from touchpoints.models import (
    RETRY_MAX_DELAY_SECONDS_BOUNDS, RETRY_WINDOW_HOURS_BOUNDS, Cadence, Touchpoint, TouchpointSettings,
)
from touchpoints.services.rendering import touchpoint_context, touchpoint_render
from touchpoints.services.rules import Decision, Facts, Limits, counts_to_cap, touchpoint_decide
from touchpoints.services.transports import EmailTransport, PermanentSendError, TransientSendError, sms_backend
from winback.models import WinbackCase
from winback.services.cases import case_care_call_request
from winback.services.queue import coupon_issue

log = logging.getLogger(__name__)
SENDER = Actor(user=None, label="task:touchpoints.send_batch")
Status = Touchpoint.Status
RETRY_REASONS = (Touchpoint.Reason.MAIL_SERVER, Touchpoint.Reason.TEMPORARY_ERROR)

def _limits_load() -> Limits:
    row = TouchpointSettings.objects.get_or_create(pk=1)[0]
    return Limits(
        cap_count=row.cap_count, cap_days=row.cap_days, transactional_exempt=row.transactional_exempt,
        quiet_start=row.quiet_start, quiet_end=row.quiet_end, stale_after=dt.timedelta(hours=row.stale_after_hours),
    )


_limits = Recent(_limits_load)


def touchpoint_limits(*, fresh: bool = False) -> Limits:
    """The settings row as rule limits, read at most every few seconds per process."""
    return _limits.get(fresh=fresh)


@dataclass(frozen=True)
class RetryPolicy:
    base: dt.timedelta  # the first retry's delay; each next one doubles...
    cap: dt.timedelta  # ...up to this
    window: dt.timedelta  # retries go on this long after the first temporary error, then it fails


def retry_policy() -> RetryPolicy:
    row = TouchpointSettings.objects.get_or_create(pk=1)[0]
    return RetryPolicy(
        base=dt.timedelta(seconds=row.retry_base_seconds),
        cap=dt.timedelta(seconds=clamp(settings.TOUCHPOINT_RETRY_MAX_DELAY_SECONDS, RETRY_MAX_DELAY_SECONDS_BOUNDS)),
        window=dt.timedelta(hours=clamp(settings.TOUCHPOINT_RETRY_WINDOW_HOURS, RETRY_WINDOW_HOURS_BOUNDS)),
    )


def retry_delay(*, attempt: int, policy: RetryPolicy) -> dt.timedelta:
    """The wait after the ``attempt``-th attempt failed: base, twice base, four times... capped."""
    if attempt > 40:  # long past any cap; keeps the power small
        return policy.cap
    return min(policy.base * 2 ** max(attempt - 1, 0), policy.cap)


def clamp(value: int, bounds: tuple[int, int]) -> int:
    # touchpoints.checks reports an out-of-range environment value; until it is fixed, the nearest bound.
    return min(max(value, bounds[0]), bounds[1])


def not_waiting(now: dt.datetime) -> Q:
    return Q(retry_at__isnull=True) | Q(retry_at__lte=now)


def claimable(now: dt.datetime) -> Q:
    return Q(not_waiting(now), status=Status.SCHEDULED, due_at__lte=now) | Q(status=Status.SENDING, lease_until__lt=now)


def older_retrying(*, customer_id, channel, due_at, touchpoint_id) -> QuerySet:
    """Older touchpoints to the same customer on the same channel that met a temporary error and are not
    settled yet: a message waits behind them, so that a customer's messages arrive in order after an
    outage. The arguments may be OuterRef()s (dispatch.py)."""
    return Touchpoint.objects.filter(
        Q(due_at__lt=due_at) | Q(due_at=due_at, pk__lt=touchpoint_id),
        customer_id=customer_id, channel=channel, retry_since__isnull=False, status__in=[Status.SCHEDULED, Status.SENDING])


def touches_recent(*, customer_id: int, since: dt.datetime, limits: Limits, exclude_touchpoint: int | None = None) -> int:
    """Touches for the frequency cap: outbound contacts on the timeline since ``since`` (every channel,
    agents' calls included), plus touchpoints being sent right now. Exempt transactional messages do not count."""
    contacts = Contact.objects.filter(customer_id=customer_id, direction=Contact.Direction.OUTBOUND, occurred_at__gte=since)
    in_flight = (Touchpoint.objects.filter(customer_id=customer_id, status=Status.SENDING)
                 .exclude(channel="call").exclude(pk=exclude_touchpoint))
    if limits.transactional_exempt:
        contacts = contacts.exclude(touchpoint__step__cadence__marketing=False)
        in_flight = in_flight.filter(step__cadence__marketing=True)
    return contacts.count() + in_flight.count()


def _facts(tp: Touchpoint, customer: Customer, now: dt.datetime, limits: Limits) -> Facts:
    step, cadence = tp.step, tp.step.cadence
    cases = list(WinbackCase.objects.filter(customer=customer, status=WinbackCase.Status.OPEN, kind=WinbackCase.Kind.WINBACK))
    return Facts(
        channel=tp.channel, trigger=cadence.trigger, marketing=cadence.marketing, discount=step.is_discount,
        # "Too late" counts from the last attempt the retries scheduled: lateness from waiting for the mail
        # server is the retry window's business (_retry_or_fail), not the stale rule's.
        enabled=cadence.enabled and step.enabled, anchor_at=tp.anchor_at, due_at=max(tp.due_at, tp.retry_at or tp.due_at),
        email=customer.email, phone=customer.phone, consent=customer.email_consent,
        do_not_call=customer.do_not_call_since is not None, status=customer.status,
        last_order_at=customer.last_order_at, order_count=customer.order_count, total_spent=customer.total_spent,
        call_zones=customer.call_zones,
        holdout_case=any(c.holdout for c in cases),
        case_being_worked=any(
            (c.claimed_by_id is not None and c.lease_until is not None and c.lease_until > now)
            or c.callback_at is not None or c.awaiting_return for c in cases),
        open_complaint=Complaint.objects.filter(customer=customer).exclude(status=Complaint.Status.RESOLVED).exists(),
        recent_touches=(touches_recent(customer_id=customer.pk, since=now - dt.timedelta(days=limits.cap_days),
                                       limits=limits, exclude_touchpoint=tp.pk)
                        if counts_to_cap(marketing=cadence.marketing, limits=limits) else 0),
        min_orders=cadence.min_orders, min_total_spent=cadence.min_total_spent,
        suppressed=customer.suppressed_at is not None,
    )


@dataclass
class Outgoing:
    touchpoint: Touchpoint
    customer: Customer
    now: dt.datetime


def touchpoint_send(*, touchpoint_id: int, now: dt.datetime | None = None, transport: EmailTransport | None = None) -> str:
    """Send the touchpoint if it is due and still ours to send. Returns what happened (for logs and tests):
    sent, suppressed, cancelled, deferred, retry, failed or skipped (nothing to do)."""
    now = now or timezone.now()
    started = time.monotonic()
    try:
        outcome, outgoing = _claim(touchpoint_id=touchpoint_id, now=now)
    except (OperationalError, InterfaceError):
        raise  # the database itself, not this touchpoint: the task retries the batch
    except Exception as exc:
        # This touchpoint's own data (a coupon that cannot be issued, a date out of range): the claim was
        # rolled back; it fails with the reason, so the rest of its batch goes on and it is not due again.
        log.exception("touchpoint %s could not be claimed", touchpoint_id)
        return _fail_unclaimed(touchpoint_id=touchpoint_id, error=_error_text(exc), now=now)
    if outgoing is None:
        return outcome
    own_transport = transport is None
    transport = transport or EmailTransport()
    try:
        return _deliver(outgoing, transport, started=started)
    finally:
        if own_transport:
            transport.close()


@transaction.atomic
def _claim(*, touchpoint_id: int, now: dt.datetime) -> tuple[str, Outgoing | None]:
    tp = Touchpoint.objects.filter(pk=touchpoint_id).only("customer_id", "status", "channel", "due_at").first()
    if tp is None or tp.status not in (Status.SCHEDULED, Status.SENDING):
        return "skipped", None
    customer = Customer.objects.select_for_update().get(pk=tp.customer_id)
    if older_retrying(customer_id=tp.customer_id, channel=tp.channel, due_at=tp.due_at, touchpoint_id=tp.pk).exists():
        # Queued with an older one that has not gone yet: the next tick hands it out again, after that one.
        Touchpoint.objects.filter(pk=tp.pk).update(queued_until=None)
        return "skipped", None
    lease = dt.timedelta(seconds=settings.TOUCHPOINT_SEND_LEASE_SECONDS)
    claimed = Touchpoint.objects.filter(claimable(now), pk=touchpoint_id).update(
        status=Status.SENDING, lease_until=now + lease, attempts=F("attempts") + 1, queued_until=None, updated_at=now)
    if not claimed:
        return "skipped", None
    tp = Touchpoint.objects.select_related("step__cadence", "step__offer").get(pk=touchpoint_id)
    limits = touchpoint_limits()
    decision = touchpoint_decide(facts=_facts(tp, customer, now, limits), limits=limits, now=now)
    if decision.action != "send":
        return _settle_without_sending(tp, customer, decision, now), None
    if tp.channel == "call":
        case = case_care_call_request(customer=customer, now=now)
        if case is None:
            return _settle_without_sending(tp, customer, Decision("suppress", "holdout"), now), None
        Touchpoint.objects.filter(pk=tp.pk).update(status=Status.SENT, sent_at=now, case=case, lease_until=None, updated_at=now)
        _schedule_next_checkin(tp, now)
        return "sent", None
    if tp.step.offer_id and tp.coupon_id is None:
        case = WinbackCase.objects.filter(customer=customer, status="open", kind="winback").first()
        tp.coupon = coupon_issue(customer=customer, offer=tp.step.offer, now=now, case=case)
        Touchpoint.objects.filter(pk=tp.pk).update(coupon=tp.coupon)
    return "claimed", Outgoing(touchpoint=tp, customer=customer, now=now)


def _settle_without_sending(tp: Touchpoint, customer: Customer, decision: Decision, now: dt.datetime) -> str:
    if decision.action == "defer":
        # Not an attempt: it was never tried.
        Touchpoint.objects.filter(pk=tp.pk).update(
            status=Status.SCHEDULED, due_at=decision.until, reason=decision.reason, lease_until=None,
            attempts=F("attempts") - 1, updated_at=now)
        return "deferred"
    status = Status.SUPPRESSED if decision.action == "suppress" else Status.CANCELLED
    Touchpoint.objects.filter(pk=tp.pk).update(status=status, reason=decision.reason, lease_until=None, updated_at=now)
    if decision.route_to_call:
        case_care_call_request(customer=customer, now=now)
    if decision.action == "suppress":
        _schedule_next_checkin(tp, now)
    return "suppressed" if decision.action == "suppress" else "cancelled"


def _message_id(tp: Touchpoint) -> str:
    domain = email.utils.parseaddr(settings.DEFAULT_FROM_EMAIL)[1].rpartition("@")[2] or "localhost"
    return f"<touchpoint-{tp.pk}@{domain}>"


def _extra_context(tp: Touchpoint) -> dict:
    kind, _, value = tp.anchor.partition(":")
    if kind == "order" and value.isdigit():
        return {"order": Order.objects.filter(pk=int(value)).first()}
    if kind == "milestone" and value.isdigit():
        return {"milestone": int(value)}
    if kind == "anniversary" and value.isdigit():
        return {"years": int(value)}
    return {}


def _deliver(out: Outgoing, transport: EmailTransport, *, started: float) -> str:
    tp, customer = out.touchpoint, out.customer
    marketing = tp.step.cadence.marketing
    try:
        context = touchpoint_context(customer=customer, touchpoint_id=tp.pk, template=tp.step.template,
                                     marketing=marketing, coupon=tp.coupon, extra=_extra_context(tp))
        rendered = touchpoint_render(template=tp.step.template, locale=customer.locale, context=context, step=tp.step)
        if tp.channel == "email":
            message_id = _message_id(tp)
            headers = {"Message-ID": message_id, "X-Touchpoint": str(tp.pk)}
            if marketing:
                headers["List-Unsubscribe"] = f"<{context['unsubscribe_url']}>"
                headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
            transport.send(to=customer.email, subject=rendered.subject, text=rendered.text, html=rendered.html, headers=headers)
            summary = rendered.subject
        else:
            message_id = sms_backend().send(to=customer.phone, text=rendered.sms, reference=f"touchpoint-{tp.pk}")
            summary = rendered.sms
    except TransientSendError as exc:
        return _retry_or_fail(tp, exc, now=out.now)
    except PermanentSendError as exc:
        return _fail(tp, str(exc))
    except Exception as exc:  # a template or data error: retrying will not help; the admin shows it
        log.exception("touchpoint %s could not be sent", tp.pk)
        return _fail(tp, _error_text(exc))
    # The send instant on the caller's clock (now is the real time except in tests and replays).
    sent_at = out.now + dt.timedelta(seconds=time.monotonic() - started)
    return _mark_sent(tp, customer=customer, message_id=message_id, summary=summary, sent_at=sent_at)


def _mark_sent(tp: Touchpoint, *, customer: Customer, message_id: str, summary: str, sent_at: dt.datetime) -> str:
    # One statement, committed at once: the shorter the gap between the server's "accepted" and this
    # record, the smaller the chance that a crash in between sends the message again.
    held = Touchpoint.objects.filter(pk=tp.pk, status=Status.SENDING, attempts=tp.attempts).update(
        status=Status.SENT, sent_at=sent_at, provider_message_id=message_id[:200], subject=summary[:300],
        lease_until=None, retry_at=None, last_error="", updated_at=sent_at,
        reason=Case(When(reason__in=RETRY_REASONS, then=Value("")), default=F("reason")))
    if not held:  # our lease ran out and another worker took it over; it records the send
        return "skipped"
    touchpoint_after_sent(touchpoint_id=tp.pk)
    if tp.channel == "email":  # the one line a sent email leaves in the log (an SMS backend logs its own)
        log.info("email sent: touchpoint %s, %s, message %s", tp.pk, tp.step.template, message_id)
    return "sent"


@transaction.atomic
def touchpoint_after_sent(*, touchpoint_id: int) -> None:
    """The sent message's Contact on the timeline and, for check-ins, the next one. Idempotent: the
    dispatcher calls it again for any sent touchpoint a crash left without its contact."""
    tp = Touchpoint.objects.select_for_update().select_related("step__cadence", "customer").get(pk=touchpoint_id)
    if tp.status != Status.SENT or tp.contact_id or tp.channel == "call":
        return
    contact = Contact.objects.filter(external_id=f"touchpoint-{tp.pk}").first() or contact_create(actor=SENDER, data={
        "external_id": f"touchpoint-{tp.pk}", "customer": tp.customer, "channel": tp.channel,
        "direction": Contact.Direction.OUTBOUND, "occurred_at": tp.sent_at, "outcome": Contact.Outcome.SENT,
        "notes": f"{tp.step.cadence.name}: {tp.subject}"[:2000],
    })
    Touchpoint.objects.filter(pk=tp.pk).update(contact=contact)
    _schedule_next_checkin(tp, tp.sent_at)


def _retry_or_fail(tp: Touchpoint, exc: TransientSendError, *, now: dt.datetime) -> str:
    """Wait and try again, for the retry window from the first temporary error; then fail with the reason.

    The touchpoint keeps its due_at, so that after an outage the dispatcher sends the oldest first; retry_at
    holds it back until its next attempt (or until the tick finds the mail server back, outage.py)."""
    policy = retry_policy()
    since = tp.retry_since or now
    if now >= since + policy.window:
        hours = round(policy.window.total_seconds() / 3600, 1)
        return _fail(tp, f"Gave up: temporary errors for {hours:g} hours (since {since.astimezone(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, "
                         f"{tp.attempts} attempts); the last: {exc}")
    retry_at = min(now + retry_delay(attempt=tp.attempts, policy=policy), since + policy.window)
    server = exc.server and tp.channel == "email"
    Touchpoint.objects.filter(pk=tp.pk, status=Status.SENDING, attempts=tp.attempts).update(
        status=Status.SCHEDULED, retry_at=retry_at, retry_since=since, last_error=str(exc)[:2000], lease_until=None,
        reason=Touchpoint.Reason.MAIL_SERVER if server else Touchpoint.Reason.TEMPORARY_ERROR, updated_at=now)
    return "retry"


def _fail(tp: Touchpoint, error: str) -> str:
    Touchpoint.objects.filter(pk=tp.pk, status=Status.SENDING, attempts=tp.attempts).update(
        status=Status.FAILED, last_error=error[:2000], lease_until=None, retry_at=None, updated_at=timezone.now())
    return "failed"


def _fail_unclaimed(*, touchpoint_id: int, error: str, now: dt.datetime) -> str:
    # Only while nobody holds it: a worker that claimed it meanwhile decides for itself.
    failed = Touchpoint.objects.filter(claimable(now), pk=touchpoint_id).update(
        status=Status.FAILED, last_error=error[:2000], attempts=F("attempts") + 1, lease_until=None,
        queued_until=None, updated_at=now)
    return "failed" if failed else "skipped"


def _error_text(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    return f"{type(exc).__name__}: {exc}"


def _schedule_next_checkin(tp: Touchpoint, now: dt.datetime) -> None:
    """Check-ins recur: the next one is scheduled when one is sent (or suppressed)."""
    cadence = tp.step.cadence
    if cadence.trigger != Cadence.Trigger.CHECKIN:
        return
    try:
        due = max(tp.due_at, now) + dt.timedelta(days=cadence.interval_days)
    except OverflowError:
        # A row stored before interval_days was bounded: this touchpoint stands (it is sent or suppressed);
        # the cadence stops recurring, and settings_problems shows why.
        log.warning("cadence %s: interval of %s days is out of range; no next check-in for customer %s",
                    cadence.pk, cadence.interval_days, tp.customer_id)
        return
    Touchpoint.objects.bulk_create([Touchpoint(
        customer_id=tp.customer_id, step=tp.step, channel=tp.channel, anchor_at=due, anchor="checkin",
        due_at=due, idempotency_key=f"c{tp.customer_id}:ci{due:%Y%m%d}:s{tp.step_id}",
    )], ignore_conflicts=True)


@transaction.atomic
def touchpoint_retry(*, touchpoint_ids: list[int], now: dt.datetime | None = None, actor: Actor = SENDER) -> int:
    """The admin's retry: failed touchpoints go back to the outbox, due now, with fresh attempts; each with an
    audit row naming who asked."""
    now = now or timezone.now()
    failed = list(Touchpoint.objects.select_for_update().filter(pk__in=touchpoint_ids, status=Status.FAILED)
                  .values_list("pk", "customer_id"))
    Touchpoint.objects.filter(pk__in=[pk for pk, _ in failed]).update(
        status=Status.SCHEDULED, due_at=now, attempts=0, lease_until=None, queued_until=None, retry_at=None,
        retry_since=None, updated_at=now)
    audit_bulk(actor=actor, action=AuditEntry.Action.UPDATE, entity=Touchpoint._meta.label_lower,
               rows=[(pk, customer_id, {"status": [Status.FAILED, Status.SCHEDULED]}) for pk, customer_id in failed])
    return len(failed)
