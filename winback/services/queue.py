"""The agents' queue: who is callable now, in which order, claimed with a lease, and what a call changes.

Queue order: due callbacks (to the agent who booked them, to anyone after the grace period), then
recovery calls (an open complaint), then priority. A case is callable when it is open, not held out, its
customer has a phone and no do-not-call, it is calling hours in the customer's zone(s), it has had fewer
than the maximum attempts and its gap after the last attempt is over.
"""

import contextlib
import datetime as dt
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.cache import Recent
from core.dialect import is_postgresql
from crm.models import Complaint, Contact, Customer
from crm.services.audit import Actor
from crm.services.customers import customer_update
from crm.services.records import complaint_create, contact_create
from winback.models import (
    OFFER_BOUNDS, CallSettings, Coupon, CouponReservation, Disposition, LeaveReason, Offer, WinbackCase,
)
from winback.services.calling_hours import inside_calling_hours, local_to_utc, open_zones_array_literal
from winback.services.cases import (
    NotYourCase, case_after_call, case_claim_first_callable, case_claim_one, case_held, case_release,
    cases_stop_calls, cases_wake_due,
)

Outcome = Contact.Outcome
RETRY_OUTCOMES = {Outcome.NO_ANSWER: "gap_no_answer_minutes", Outcome.BUSY: "gap_busy_minutes", Outcome.VOICEMAIL: "gap_voicemail_minutes"}
AGENT_OUTCOMES = [
    Outcome.REACHED_WILL_RETURN, Outcome.REACHED_DECLINED, Outcome.CALLBACK_REQUESTED, Outcome.NO_ANSWER,
    Outcome.VOICEMAIL, Outcome.BUSY, Outcome.WRONG_NUMBER, Outcome.DO_NOT_CALL, Outcome.COMPLAINT_ESCALATED,
]
COUPON_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: codes are read out on the phone


_call_settings = Recent(lambda: CallSettings.objects.get_or_create(pk=1)[0])


def call_settings(*, fresh: bool = False) -> CallSettings:
    """The call settings row, read at most every few seconds per process (claims are frequent)."""
    return _call_settings.get(fresh=fresh)


# --- Claiming ---------------------------------------------------------------------------------------------

def case_claim_next(*, agent: AbstractBaseUser, now: dt.datetime | None = None) -> WinbackCase | None:
    """Give the agent the next callable case, held for the lease; None when nobody is callable now.

    An agent holds one case at a time: asking again while the lease runs returns the same case.
    """
    now = now or timezone.now()
    rules = call_settings()
    lease_until = now + dt.timedelta(minutes=rules.lease_minutes)
    if is_postgresql():
        # The common case, an agent holding nothing, is one statement in one round trip. It claims nothing
        # when the agent holds a case (or the same agent claims twice at once: the one-claim constraint);
        # the locked path below sorts those out.
        try:
            # Outside a transaction the statement commits on its own; inside one, a savepoint keeps a
            # constraint error from spoiling the caller's transaction.
            with transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext():
                case = _claim_one(agent=agent, now=now, rules=rules, lease_until=lease_until)
        except IntegrityError:
            case = None
        if case is not None:
            return case
    return _claim_next_locked(agent=agent, now=now, rules=rules, lease_until=lease_until)


@transaction.atomic
def _claim_next_locked(*, agent: AbstractBaseUser, now: dt.datetime, rules: CallSettings,
                       lease_until: dt.datetime) -> WinbackCase | None:
    held = WinbackCase.objects.select_for_update().filter(claimed_by=agent, status=WinbackCase.Status.OPEN).first()
    if held is not None:
        if held.lease_until and held.lease_until > now:
            return held
        case_release(agent=agent, case_id=held.pk, now=now)
    if is_postgresql():
        return _claim_one(agent=agent, now=now, rules=rules, lease_until=lease_until)
    cases_wake_due(now=now)
    case_id = case_claim_first_callable(
        agent=agent, now=now, lease_until=lease_until, max_attempts=rules.max_attempts,
        grace_over=now - dt.timedelta(minutes=rules.callback_grace_minutes),
        callable_now=lambda zones: inside_calling_hours(call_zones=zones, now=now, start=rules.calling_start,
                                                        end=rules.calling_end))
    return None if case_id is None else WinbackCase.objects.select_related("customer").get(pk=case_id)


def _claim_one(*, agent: AbstractBaseUser, now: dt.datetime, rules: CallSettings,
               lease_until: dt.datetime) -> WinbackCase | None:
    return case_claim_one(
        agent=agent, now=now, lease_until=lease_until, max_attempts=rules.max_attempts,
        grace_over=now - dt.timedelta(minutes=rules.callback_grace_minutes), business_tz=settings.TIME_ZONE,
        open_zones=open_zones_array_literal(now=now, start=rules.calling_start, end=rules.calling_end))


# --- Working a case ---------------------------------------------------------------------------------------

@dataclass
class DispositionInput:
    outcome: str
    reason_id: int | None = None
    note: str = ""
    callback_local: dt.datetime | None = None  # naive, in the customer's local time
    offer_id: int | None = None


@transaction.atomic
def case_record_disposition(*, agent: AbstractBaseUser, case_id: int, data: DispositionInput,
                            now: dt.datetime | None = None) -> Disposition:
    """Record a worked call: a Contact on the timeline, the case moved on, rules that act at once."""
    now = now or timezone.now()
    rules = call_settings(fresh=True)
    case = case_held(agent=agent, case_id=case_id)
    customer = case.customer
    errors: dict[str, str] = {}
    if data.outcome not in AGENT_OUTCOMES:
        errors["outcome"] = _("“%(outcome)s” is not one of: %(choices)s.") % {
            "outcome": data.outcome, "choices": ", ".join(AGENT_OUTCOMES)}
    reason = None
    if data.reason_id is not None:
        reason = LeaveReason.objects.filter(pk=data.reason_id, active=True).first()
        if reason is None:
            errors["reason"] = _("No active reason for leaving with id %(id)s.") % {"id": data.reason_id}
    offer = None
    if data.offer_id is not None:
        offer, offer_error = _offer_for_case(offer_id=data.offer_id, case=case, now=now)
        if offer_error:
            errors["offer"] = offer_error
    callback_at = None
    if data.outcome == Outcome.CALLBACK_REQUESTED:
        if data.callback_local is None:
            errors["callback_at"] = _("A callback needs a date and time (the customer's local time).")
        else:
            callback_at = local_to_utc(call_zones=customer.call_zones, local=data.callback_local.replace(tzinfo=None))
            if callback_at <= now:
                errors["callback_at"] = _("The callback time is in the past.")
            elif callback_at > now + dt.timedelta(days=60):
                errors["callback_at"] = _("A callback is at most 60 days ahead.")
            elif not inside_calling_hours(call_zones=customer.call_zones, now=callback_at,
                                          start=rules.calling_start, end=rules.calling_end):
                errors["callback_at"] = _("Outside calling hours (%(start)s–%(end)s in the customer's local time).") % {
                    "start": f"{rules.calling_start:%H:%M}", "end": f"{rules.calling_end:%H:%M}"}
    if errors:
        raise ValidationError(errors)

    actor = Actor.of(agent, via="queue")
    contact = contact_create(actor=actor, data={
        "customer": customer, "channel": Contact.Channel.CALL, "direction": Contact.Direction.OUTBOUND,
        "occurred_at": now, "agent": agent, "outcome": data.outcome, "notes": data.note,
    })
    coupon = None
    if offer:
        # The code the agent already read out (coupon_reserve), when they chose this offer on this call.
        reserved = CouponReservation.objects.filter(case=case, agent=agent, offer=offer).first()
        coupon = coupon_issue(customer=customer, case=case, offer=offer, now=now,
                              code=reserved.code if reserved else None)
    CouponReservation.objects.filter(case=case).delete()
    outcome = data.outcome
    if outcome == Outcome.WRONG_NUMBER:
        customer_update(actor=actor, customer=customer, data={"phone": ""})
    elif outcome == Outcome.DO_NOT_CALL:
        customer_update(actor=actor, customer=customer, data={"do_not_call": True})
        cases_stop_calls(customer=customer, except_case=case, agent=agent, now=now)
    elif outcome == Outcome.COMPLAINT_ESCALATED:
        complaint_create(actor=actor, data={
            "customer": customer, "opened_at": now, "summary": data.note or "Escalated from a win-back call.",
            "category": Complaint.Category.OTHER, "severity": Complaint.Severity.HIGH, "owner": agent,
        })
    retry_gap = getattr(rules, RETRY_OUTCOMES[outcome]) if outcome in RETRY_OUTCOMES else None
    case_after_call(case=case, agent=agent, outcome=outcome, now=now, max_attempts=rules.max_attempts,
                    retry_gap_minutes=retry_gap, escalated_gap_minutes=rules.gap_escalated_minutes,
                    callback_at=callback_at, reason_name=reason.name if reason else "")
    return Disposition.objects.create(
        case=case, agent=agent, contact=contact, outcome=outcome, reason=reason, note=data.note,
        callback_at=callback_at, coupon=coupon, created_at=now,
    )


def coupon_expires_at(*, offer: Offer, now: dt.datetime) -> dt.datetime:
    """When a coupon of ``offer`` issued ``now`` runs out. An offer stored before valid_days was bounded may
    hold a validity outside the bounds (up to more days than a date can reach): it is not issued, with a
    clear error on the offer, never an OverflowError or a coupon valid for centuries."""
    lowest, highest = OFFER_BOUNDS["valid_days"]
    if not lowest <= offer.valid_days <= highest:
        raise ValidationError({"offer": _(
            "The offer “%(name)s” cannot be issued: it is valid for %(days)s days, outside %(lowest)s to %(highest)s. "
            "A manager must correct it.") % {"name": offer.name, "days": offer.valid_days, "lowest": lowest,
                                               "highest": highest}}, code="offer_out_of_range")
    return now + dt.timedelta(days=offer.valid_days)


def coupon_issue(*, customer: Customer, offer: Offer, now: dt.datetime, case: WinbackCase | None = None,
                 code: str | None = None) -> Coupon:
    """A unique code for this customer, linked to the case if any (a collision just draws again); ``code``:
    the one already reserved for it (coupon_reserve), issued as it is.

    Raises ValidationError (on "offer") when the offer cannot give an expiry date."""
    expires_at = coupon_expires_at(offer=offer, now=now)
    return Coupon.objects.create(code=code or coupon_code_draw(offer=offer), offer=offer, customer=customer,
                                 case=case, issued_at=now, expires_at=expires_at)


def coupon_code_draw(*, offer: Offer) -> str:
    """A code of the offer that no coupon and no reservation holds (the unique constraints have the last word)."""
    for _attempt in range(5):
        code = f"{offer.code_prefix}-{''.join(secrets.choice(COUPON_ALPHABET) for _char in range(8))}"
        if not (Coupon.objects.filter(code=code).exists() or CouponReservation.objects.filter(code=code).exists()):
            return code
    raise RuntimeError("Could not draw a unique coupon code.")


def _offer_for_case(*, offer_id: int, case: WinbackCase, now: dt.datetime) -> tuple[Offer | None, str]:
    """The active offer that may be made on this call, or why not."""
    offer = Offer.objects.filter(pk=offer_id, active=True).first()
    if offer is None:
        return None, _("No active offer with id %(id)s.") % {"id": offer_id}
    if case.holdout:
        return None, _("A holdout case is never contacted.")
    try:
        coupon_expires_at(offer=offer, now=now)
    except ValidationError as exc:
        return None, " ".join(exc.messages)
    return offer, ""


@transaction.atomic
def coupon_reserve(*, agent: AbstractBaseUser, case_id: int, offer_id: int | None,
                   now: dt.datetime | None = None) -> CouponReservation | None:
    """The code of the offer the agent just chose on their held case, to read out before the call is saved.

    Idempotent: the same offer again gives the same code. Another offer replaces the earlier, unsaved one
    (one reservation per case); no offer (``offer_id`` None) drops it. Nothing here is a coupon yet (the
    KPIs count coupons): saving the call issues the coupon with this code (case_record_disposition).
    NotYourCase when the agent does not hold the case; ValidationError (on "offer") for an offer that
    cannot be made."""
    now = now or timezone.now()
    case = case_held(agent=agent, case_id=case_id)
    if offer_id is None:
        CouponReservation.objects.filter(case=case).delete()
        return None
    offer, error = _offer_for_case(offer_id=offer_id, case=case, now=now)
    if error:
        raise ValidationError({"offer": error})
    current = CouponReservation.objects.select_for_update().filter(case=case).first()
    if current is not None and current.agent_id == agent.pk and current.offer_id == offer.pk:
        return current
    # Another offer, or a code left by an agent whose hold ran out: never two codes live for one call.
    CouponReservation.objects.filter(case=case).delete()
    return CouponReservation.objects.create(case=case, agent=agent, offer=offer, code=coupon_code_draw(offer=offer),
                                            reserved_at=now)


def case_put_back(*, agent: AbstractBaseUser, case_id: int, now: dt.datetime | None = None) -> None:
    """The agent hands the held case back: it waits behind every other callable case for the call settings'
    skip_minutes, so "next customer" brings someone else. NotYourCase when they do not hold it."""
    case_release(agent=agent, case_id=case_id, now=now, skip_minutes=call_settings(fresh=True).skip_minutes)
