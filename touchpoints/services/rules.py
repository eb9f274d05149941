"""What may be sent, decided at send time from the customer's state right then.

The rules, in the order they are checked (the first that says no decides):

0. the person is on the suppression list (crm.services.suppression) -> suppressed as opted out;
1. the cadence or step was disabled -> cancelled;
2. it is more than ``stale_after_hours`` late (an outage, a long pause) -> cancelled (expired);
3. it no longer applies: an at-risk message once the customer ordered again or lapsed; a win-back message
   once they ordered again; a check-in once they left the audience or stopped being active -> cancelled;
4. no address for the channel (email, phone) -> suppressed;
5. an SMS or a call task to a do-not-call number, marketing and transactional alike -> suppressed (read at
   send time: an agent's do-not-call stops what is already queued);
6. marketing email or SMS without consent or an existing relationship, or after an opt-out -> suppressed.
   There is one consent on record, ``email_consent``; it is also the lawful basis for marketing SMS (an SMS
   is sent only when there is no do-not-call AND that consent is granted or a relationship), as we hold no
   separate SMS consent and a number without a do-not-call is no proof the person wants our marketing;
7. marketing to a customer whose open win-back case is in the holdout (never contacted) -> suppressed;
8. win-back to a customer whose case an agent is working: the case is claimed right now, a callback is
   booked, or the customer told an agent they will return -> suppressed;
9. a discount (any offer, any win-back message) while a complaint is open -> suppressed, and the customer
   is routed to a recovery call instead;
10. quiet hours in the customer's local time (in every zone they may be in) -> deferred to when they end,
    with the reason recorded (applies to every email and SMS, transactional ones too);
11. the frequency cap: at most ``cap_count`` touches in ``cap_days`` over all channels -> suppressed.
    A touch is any outbound contact on the customer's timeline (emails, SMS and agents' calls, answered or
    not) plus touchpoints being sent at this moment. Transactional messages are exempt when the setting
    says so: they neither wait for the cap nor count towards it.

Call tasks (call steps) skip 10 and 11: the agents' queue applies calling hours, and the call, once made,
is a contact that counts.
"""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from winback.services.calling_hours import zone_info, zone_keys


@dataclass(frozen=True)
class Facts:
    """Everything the rules look at, read in the send transaction (the customer row locked)."""

    channel: str
    trigger: str
    marketing: bool
    discount: bool
    enabled: bool
    anchor_at: dt.datetime
    due_at: dt.datetime
    # The customer.
    email: str
    phone: str
    consent: str
    do_not_call: bool
    status: str
    last_order_at: dt.datetime | None
    order_count: int
    total_spent: Decimal
    call_zones: str
    # Their cases, complaints and recent touches.
    holdout_case: bool
    case_being_worked: bool
    open_complaint: bool
    recent_touches: int
    # Audience of the cadence (check-ins are re-checked at send time).
    min_orders: int = 0
    min_total_spent: Decimal = Decimal("0")
    # On the suppression list (erased, or re-imported after an erasure): nothing at all, transactional too.
    suppressed: bool = False


@dataclass(frozen=True)
class Limits:
    cap_count: int
    cap_days: int
    transactional_exempt: bool
    quiet_start: dt.time
    quiet_end: dt.time
    stale_after: dt.timedelta


@dataclass(frozen=True)
class Decision:
    action: str  # send | suppress | cancel | defer
    reason: str = ""
    until: dt.datetime | None = None
    route_to_call: bool = False


SEND = Decision("send")


def touchpoint_decide(*, facts: Facts, limits: Limits, now: dt.datetime) -> Decision:
    f = facts
    if f.suppressed:
        return Decision("suppress", "opted_out")
    if not f.enabled:
        return Decision("cancel", "disabled")
    if now - f.due_at > limits.stale_after:
        return Decision("cancel", "expired")
    if not _still_applies(f):
        return Decision("cancel", "no_longer_applies")
    if f.channel == "email" and not f.email:
        return Decision("suppress", "no_email")
    if f.channel in ("sms", "call") and not f.phone:
        return Decision("suppress", "no_phone")
    if f.channel in ("sms", "call") and f.do_not_call:
        return Decision("suppress", "do_not_call")
    if f.marketing and f.channel != "call":
        # Email consent is the only consent on record, so it is the lawful basis for marketing SMS too.
        if f.consent == "withdrawn":
            return Decision("suppress", "opted_out")
        if f.consent not in ("granted", "relationship"):
            return Decision("suppress", "no_consent")
    if f.marketing and f.holdout_case:
        return Decision("suppress", "holdout")
    if f.trigger == "lapsed" and f.case_being_worked:
        return Decision("suppress", "case_in_progress")
    if f.discount and f.open_complaint and f.channel != "call":
        return Decision("suppress", "open_complaint", route_to_call=True)
    if f.channel == "call":
        return SEND
    quiet_ends = quiet_hours_end(call_zones=f.call_zones, now=now, start=limits.quiet_start, end=limits.quiet_end)
    if quiet_ends is not None:
        return Decision("defer", "quiet_hours", until=quiet_ends)
    if counts_to_cap(marketing=f.marketing, limits=limits) and f.recent_touches >= limits.cap_count:
        return Decision("suppress", "frequency_cap")
    return SEND


def counts_to_cap(*, marketing: bool, limits: Limits) -> bool:
    return marketing or not limits.transactional_exempt


def _still_applies(f: Facts) -> bool:
    ordered_since = f.last_order_at is not None and f.last_order_at > f.anchor_at
    if f.trigger == "at_risk":
        return f.status == "at_risk" and not ordered_since
    if f.trigger == "lapsed":
        return f.status in ("lapsed", "cancelled") and not ordered_since
    if f.trigger == "checkin":
        return f.status in ("active", "at_risk") and f.order_count >= f.min_orders and f.total_spent >= f.min_total_spent
    return True


def _is_quiet(local: dt.time, start: dt.time, end: dt.time) -> bool:
    if start < end:
        return start <= local < end
    return local >= start or local < end  # across midnight, e.g. 21:00-08:00


def quiet_hours_end(*, call_zones: str, now: dt.datetime, start: dt.time, end: dt.time) -> dt.datetime | None:
    """None when it is not quiet hours in any zone the customer may be in; else the first instant, after
    now, when it is no longer quiet hours in any of them."""
    at = now
    for _ in range(8):  # a few rounds settle zones whose quiet hours overlap differently
        latest = None
        for name in zone_keys(call_zones):
            zone = zone_info(name)
            if zone is None:
                continue
            local = at.astimezone(zone)
            if _is_quiet(local.time(), start, end):
                day = local.date() if local.time() < end else local.date() + dt.timedelta(days=1)
                # fold=0 and a round trip through UTC: a wall time skipped by DST still maps to an instant.
                ends = dt.datetime.combine(day, end, tzinfo=zone).astimezone(dt.timezone.utc)
                latest = ends if latest is None or ends > latest else latest
        if latest is None:
            return None if at == now else at
        at = max(latest, at + dt.timedelta(minutes=1))
    return at
