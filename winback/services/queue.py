"""The agents' queue: who is callable now, in which order, claimed with a lease, and what a call changes.

Queue order: due callbacks (to the agent who booked them, to anyone after the grace period), then
recovery calls (an open complaint), then priority. A case is callable when it is open, not held out, its
customer has a phone and no do-not-call, it is calling hours in the customer's zone(s), it has had fewer
than the maximum attempts and its gap after the last attempt is over.
"""

import contextlib
import datetime as dt
import functools
import secrets
import time
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from core.db import columns, fetch_all, instances
from crm.models import Complaint, Contact, Customer
from crm.services.audit import Actor
from crm.services.customers import customer_update
from crm.services.records import complaint_create, contact_create
from winback.models import OFFER_BOUNDS, CallSettings, Coupon, Disposition, LeaveReason, Offer, WinbackCase
from winback.services.calling_hours import inside_calling_hours, local_to_utc, open_zones_array_literal

Outcome = Contact.Outcome
RETRY_OUTCOMES = {Outcome.NO_ANSWER: "gap_no_answer_minutes", Outcome.BUSY: "gap_busy_minutes", Outcome.VOICEMAIL: "gap_voicemail_minutes"}
AGENT_OUTCOMES = [
    Outcome.REACHED_WILL_RETURN, Outcome.REACHED_DECLINED, Outcome.CALLBACK_REQUESTED, Outcome.NO_ANSWER,
    Outcome.VOICEMAIL, Outcome.BUSY, Outcome.WRONG_NUMBER, Outcome.DO_NOT_CALL, Outcome.COMPLAINT_ESCALATED,
]
COUPON_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: codes are read out on the phone


class NotYourCase(Exception):
    """The case is not held by this agent (another agent's, expired and taken, or closed)."""


_settings_cache: tuple[float, CallSettings] | None = None
SETTINGS_TTL_SECONDS = 5.0


def call_settings(*, fresh: bool = False) -> CallSettings:
    """The call settings row, read at most every few seconds per process (claims are frequent)."""
    global _settings_cache
    if not fresh and _settings_cache and time.monotonic() - _settings_cache[0] < SETTINGS_TTL_SECONDS:
        return _settings_cache[1]
    row = CallSettings.objects.get_or_create(pk=1)[0]
    _settings_cache = (time.monotonic(), row)
    return row


# --- Claiming ---------------------------------------------------------------------------------------------

def case_claim_next(*, agent: AbstractBaseUser, now: dt.datetime | None = None) -> WinbackCase | None:
    """Give the agent the next callable case, held for the lease; None when nobody is callable now.

    An agent holds one case at a time: asking again while the lease runs returns the same case.
    """
    now = now or timezone.now()
    rules = call_settings()
    lease_until = now + dt.timedelta(minutes=rules.lease_minutes)
    if connection.vendor == "postgresql":
        # The common case, an agent holding nothing, is one statement in one round trip. It claims nothing
        # when the agent holds a case (or the same agent claims twice at once: the one-claim constraint);
        # the locked path below sorts those out.
        try:
            # Outside a transaction the statement commits on its own; inside one, a savepoint keeps a
            # constraint error from spoiling the caller's transaction.
            with transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext():
                case = _claim_statement(agent=agent, now=now, rules=rules, lease_until=lease_until)
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
        case_release(agent=agent, case_id=held.pk)
    if connection.vendor == "postgresql":
        return _claim_statement(agent=agent, now=now, rules=rules, lease_until=lease_until)
    _wake_due(now)
    case_id = _pick_and_claim(agent=agent, now=now, rules=rules, lease_until=lease_until)
    return None if case_id is None else WinbackCase.objects.select_related("customer").get(pk=case_id)


def _wake_due(now: dt.datetime) -> None:
    """Cases whose gap, callback time or lease is over become ready again (a bounded, lock-free step)."""
    with connection.cursor() as cur:
        cur.execute(f"UPDATE winback_winbackcase SET {_WAKE_SET} WHERE id IN ({_WAKE_PICK.format(skip='')})",
                    {"now": connection.ops.adapt_datetimefield_value(now)})


_WAKE_SET = "ready = true, next_call_at = NULL, claimed_by_id = NULL, lease_until = NULL"
_WAKE_PICK = ("SELECT id FROM winback_winbackcase WHERE status = 'open' AND NOT ready AND NOT holdout"
              " AND next_call_at <= %(now)s ORDER BY next_call_at LIMIT 500{skip}")
_CALLABLE = ("c.status = 'open' AND c.ready AND NOT c.holdout AND c.attempts < %(max_attempts)s"
             " AND cu.do_not_call_since IS NULL AND cu.phone <> ''")
_CALLBACKS = (f"SELECT c.id, cu.call_zones FROM winback_winbackcase c JOIN crm_customer cu ON cu.id = c.customer_id"
              f" WHERE {_CALLABLE} AND c.callback_at IS NOT NULL AND c.callback_at <= %(now)s"
              " AND (c.callback_agent_id = %(me)s OR c.callback_at <= %(grace_over)s) ORDER BY c.callback_at, c.id")
_QUEUE = (f"SELECT c.id, cu.call_zones FROM winback_winbackcase c JOIN crm_customer cu ON cu.id = c.customer_id"
          f" WHERE {_CALLABLE} AND c.callback_at IS NULL ORDER BY c.is_recovery DESC, c.priority DESC, c.id")
_CLAIM_SET = ("claimed_by_id = %(me)s, lease_until = %(lease_until)s, ready = false, next_call_at = %(lease_until)s,"
              " updated_at = %(now)s")


@functools.lru_cache(maxsize=8)
def _pg_claim_sql(open_zones: str) -> str:
    """The whole claim on PostgreSQL as one statement, for the zones open this minute (a text[] literal).

    It wakes the cases whose gap, callback time or lease is over (they become callable from the next claim:
    a statement sees one snapshot), then takes due callbacks first (COALESCE stops at the first case found),
    else the head of the queue, skipping cases other agents are locking. Calling hours are tested against
    the open zones written into the statement as a constant: the set changes a few times an hour, and as
    a constant it is parsed once per prepared statement and hashed for a customer with a single zone,
    instead of a few hundred names sent, parsed and scanned on every claim.
    """
    zones = f"'{open_zones}'::text[]"  # zone names hold no quote (calling_hours.open_zones_array_literal)
    zone_test = (f" AND CASE WHEN strpos(cu.call_zones, ',') = 0"
                 f" THEN COALESCE(NULLIF(cu.call_zones, ''), %(business_tz)s) = ANY({zones})"
                 f" ELSE string_to_array(cu.call_zones, ',') <@ {zones} END")
    picks = ["(" + sql.replace("SELECT c.id, cu.call_zones", "SELECT c.id").replace(" ORDER BY", zone_test + " ORDER BY")
             + " LIMIT 1 FOR UPDATE OF c SKIP LOCKED)" for sql in (_CALLBACKS, _QUEUE)]
    return (
        f"WITH woken AS (UPDATE winback_winbackcase SET {_WAKE_SET}"
        f" WHERE id IN ({_WAKE_PICK.format(skip=' FOR UPDATE SKIP LOCKED')}) RETURNING id)"
        f" UPDATE winback_winbackcase SET {_CLAIM_SET} WHERE id = COALESCE({picks[0]}, {picks[1]})"
        " AND NOT EXISTS (SELECT 1 FROM winback_winbackcase h WHERE h.claimed_by_id = %(me)s AND h.status = 'open')"
        f" RETURNING {columns(WinbackCase)}"
    )


def _claim_statement(*, agent: AbstractBaseUser, now: dt.datetime, rules: CallSettings,
                     lease_until: dt.datetime) -> WinbackCase | None:
    sql = _pg_claim_sql(open_zones_array_literal(now=now, start=rules.calling_start, end=rules.calling_end))
    rows = fetch_all(sql, {
        "max_attempts": rules.max_attempts, "me": agent.pk, "now": now, "lease_until": lease_until,
        "grace_over": now - dt.timedelta(minutes=rules.callback_grace_minutes), "business_tz": settings.TIME_ZONE,
    })
    return instances(WinbackCase, rows)[0] if rows else None


def _pick_and_claim(*, agent: AbstractBaseUser, now: dt.datetime, rules: CallSettings, lease_until: dt.datetime) -> int | None:
    """Elsewhere (SQLite: one writer at a time) the zones are tested here, a page of candidates at a time."""
    grace_over = now - dt.timedelta(minutes=rules.callback_grace_minutes)
    adapt = connection.ops.adapt_datetimefield_value
    params = {"max_attempts": rules.max_attempts, "me": agent.pk, "grace_over": adapt(grace_over), "now": adapt(now),
              "lease_until": adapt(lease_until)}
    with connection.cursor() as cur:
        for sql in (_CALLBACKS, _QUEUE):
            offset = 0
            while True:
                cur.execute(f"{sql} LIMIT 200 OFFSET {offset}", params)
                rows = cur.fetchall()
                for case_id, zones in rows:
                    if inside_calling_hours(call_zones=zones, now=now, start=rules.calling_start, end=rules.calling_end):
                        cur.execute(f"UPDATE winback_winbackcase SET {_CLAIM_SET} WHERE id = %(case_id)s",
                                    {**params, "case_id": case_id})
                        return case_id
                if len(rows) < 200:
                    break
                offset += 200
    return None


def case_release(*, agent: AbstractBaseUser, case_id: int) -> None:
    """Hand the held case back to the queue (one statement: only the holder's open case is touched)."""
    released = fetch_all(
        "UPDATE winback_winbackcase SET claimed_by_id = NULL, lease_until = NULL, ready = %(yes)s, next_call_at = NULL"
        " WHERE id = %(id)s AND claimed_by_id = %(me)s AND status = 'open' RETURNING id",
        {"id": case_id, "me": agent.pk, "yes": True},
    )
    if not released:
        raise NotYourCase(f"Case {case_id} is not held by you.")


def _held_case(*, agent: AbstractBaseUser, case_id: int) -> WinbackCase:
    case = (
        WinbackCase.objects.select_for_update(of=("self",)).select_related("customer")
        .filter(pk=case_id, claimed_by=agent, status=WinbackCase.Status.OPEN).first()
    )
    if case is None:
        raise NotYourCase(f"Case {case_id} is not held by you.")
    return case


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
    case = _held_case(agent=agent, case_id=case_id)
    customer = case.customer
    errors: dict[str, str] = {}
    if data.outcome not in AGENT_OUTCOMES:
        errors["outcome"] = f"'{data.outcome}' is not one of: {', '.join(AGENT_OUTCOMES)}."
    reason = None
    if data.reason_id is not None:
        reason = LeaveReason.objects.filter(pk=data.reason_id, active=True).first()
        if reason is None:
            errors["reason"] = f"No active reason for leaving with id {data.reason_id}."
    offer = None
    if data.offer_id is not None:
        offer = Offer.objects.filter(pk=data.offer_id, active=True).first()
        if offer is None:
            errors["offer"] = f"No active offer with id {data.offer_id}."
        elif case.holdout:
            errors["offer"] = "A holdout case is never contacted."
        else:
            try:
                coupon_expires_at(offer=offer, now=now)
            except ValidationError as exc:
                errors["offer"] = " ".join(exc.messages)
    callback_at = None
    if data.outcome == Outcome.CALLBACK_REQUESTED:
        if data.callback_local is None:
            errors["callback_at"] = "A callback needs a date and time (the customer's local time)."
        else:
            callback_at = local_to_utc(call_zones=customer.call_zones, local=data.callback_local.replace(tzinfo=None))
            if callback_at <= now:
                errors["callback_at"] = "The callback time is in the past."
            elif callback_at > now + dt.timedelta(days=60):
                errors["callback_at"] = "A callback is at most 60 days ahead."
            elif not inside_calling_hours(call_zones=customer.call_zones, now=callback_at,
                                          start=rules.calling_start, end=rules.calling_end):
                errors["callback_at"] = (f"Outside calling hours ({rules.calling_start:%H:%M}-{rules.calling_end:%H:%M}"
                                         " in the customer's local time).")
    if errors:
        raise ValidationError(errors)

    actor = Actor.of(agent, via="queue")
    contact = contact_create(actor=actor, data={
        "customer": customer, "channel": Contact.Channel.CALL, "direction": Contact.Direction.OUTBOUND,
        "occurred_at": now, "agent": agent, "outcome": data.outcome, "notes": data.note,
    })
    coupon = coupon_issue(customer=customer, case=case, offer=offer, now=now) if offer else None
    changes = {"claimed_by": None, "lease_until": None, "attempts": F("attempts") + 1, "last_attempt_at": now,
               "callback_at": None, "callback_agent": None, "ready": False, "next_call_at": None, "updated_at": now}
    outcome = data.outcome
    if outcome in RETRY_OUTCOMES:
        if case.attempts + 1 >= rules.max_attempts:
            changes |= _closed("lost", f"No answer after {rules.max_attempts} attempts.", now)
        else:
            changes["next_call_at"] = now + dt.timedelta(minutes=getattr(rules, RETRY_OUTCOMES[outcome]))
    elif outcome == Outcome.CALLBACK_REQUESTED:
        changes |= {"callback_at": callback_at, "callback_agent": agent, "next_call_at": callback_at}
    elif outcome == Outcome.REACHED_WILL_RETURN:
        changes["awaiting_return"] = True  # no more calls; the order closes the case as won
    elif outcome == Outcome.REACHED_DECLINED:
        changes |= _closed("lost", f"Declined{': ' + reason.name if reason else ''}.", now)
    elif outcome == Outcome.WRONG_NUMBER:
        customer_update(actor=actor, customer=customer, data={"phone": ""})
        changes |= _closed("lost", "Wrong number: the phone was cleared.", now)
    elif outcome == Outcome.DO_NOT_CALL:
        customer_update(actor=actor, customer=customer, data={"do_not_call": True})
        changes |= _closed("lost", "The customer asked not to be called.", now)
        # Every pending call for them goes: no callback anywhere, nothing ready.
        WinbackCase.objects.filter(customer=customer, status="open").exclude(pk=case.pk).update(
            ready=False, next_call_at=None, callback_at=None, callback_agent=None)
    elif outcome == Outcome.COMPLAINT_ESCALATED:
        complaint_create(actor=actor, data={
            "customer": customer, "opened_at": now, "summary": data.note or "Escalated from a win-back call.",
            "category": Complaint.Category.OTHER, "severity": Complaint.Severity.HIGH, "owner": agent,
        })
        changes |= {"is_recovery": True, "priority": F("revenue_12m") * 2,
                    "next_call_at": now + dt.timedelta(minutes=rules.gap_escalated_minutes)}
    if case.kind == WinbackCase.Kind.CARE:
        # A care call has nothing to win back: once the customer is reached (or cannot be), it is done.
        if outcome in (Outcome.REACHED_WILL_RETURN, Outcome.REACHED_DECLINED):
            changes |= _closed("done", "Care call made.", now)
        elif changes.get("status") == "lost":
            changes |= {"status": "done"}
    WinbackCase.objects.filter(pk=case.pk).update(**changes)
    return Disposition.objects.create(
        case=case, agent=agent, contact=contact, outcome=outcome, reason=reason, note=data.note,
        callback_at=callback_at, coupon=coupon, created_at=now,
    )


def _closed(status: str, reason: str, now: dt.datetime) -> dict:
    return {"status": status, "close_reason": reason, "closed_at": now, "next_call_at": None, "ready": False}


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


def coupon_issue(*, customer: Customer, offer: Offer, now: dt.datetime, case: WinbackCase | None = None) -> Coupon:
    """A unique code for this customer, linked to the case if any (a collision just draws again).

    Raises ValidationError (on "offer") when the offer cannot give an expiry date."""
    expires_at = coupon_expires_at(offer=offer, now=now)
    for _attempt in range(5):
        code = f"{offer.code_prefix}-{''.join(secrets.choice(COUPON_ALPHABET) for _char in range(8))}"
        if not Coupon.objects.filter(code=code).exists():
            return Coupon.objects.create(code=code, offer=offer, customer=customer, case=case, issued_at=now,
                                         expires_at=expires_at)
    raise RuntimeError("Could not draw a unique coupon code.")


def agent_callbacks(*, agent: AbstractBaseUser):
    return (WinbackCase.objects.filter(callback_agent=agent, status="open", callback_at__isnull=False)
            .select_related("customer").order_by("callback_at"))


def agent_cases_visible(*, user: AbstractBaseUser):
    """What an agent may see: the case they hold and the ones they booked a callback for."""
    return WinbackCase.objects.filter(Q(claimed_by=user) | Q(callback_agent=user), status="open")
