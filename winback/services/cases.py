"""A win-back case's whole life, in one module.

Every change of a ``WinbackCase`` is a named function here, used alike by the set-based paths (the
lifecycle scan, the queue's one-statement claim) and the per-case ones (an agent's call, a care request),
and every change writes ``CaseEvent`` rows in the same statement or transaction: who or what, when, the
status before and after, why. Replaying a case's events gives its state (``case_replay``).

    lapse or cancellation --open--> open --claim--> held by an agent --work--> open (a gap, a callback)
        ... --close--> won | returned (ordered again) | lost (declined, unreachable) | done (care call made)
    open --void--> void (no longer lapsed: a backfilled order or a new policy)

The rules that live here once:
- priority: the predicted recoverable value (``predicted_value``: P(alive) x the 12-month CLV of a customer
  still buying, i.e. the model's predicted_clv_12m, docs/metrics.md s.7) or, without a prediction, the
  revenue of the 12 months before the lapse (the rule before any fit); doubled while the customer has an
  open complaint (a recovery call); ``PRIORITY_SQL`` and ``case_priority``. A case's basis is refreshed for
  every open case after each fit (``cases_refresh_predicted_value``);
- what a closed case clears (its queue fields) and what a released one clears (the claim).

Statements are named constants composed with ``psycopg.sql`` (tables from the models' ``db_table``); each
names the index it relies on. PostgreSQL writes a change and its events in one statement (a
data-modifying CTE); SQLite runs the change with RETURNING and inserts the events after it, in the same
transaction (``core.dialect``).
"""

import datetime as dt
import functools
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Sum
from django.utils import timezone
from psycopg import sql

from core.db import fetch_all, instances
from core.dialect import id_list_condition, id_list_param, is_postgresql
from core.sql import compose, render
from crm.models import Complaint, Contact, Customer, Order
from predictions.models import CustomerPrediction
from winback.models import CaseEvent, Coupon, CouponReservation, Disposition, LifecycleEvent, WinbackCase

Status = WinbackCase.Status
Kind = CaseEvent.Kind

_TABLES = {"case": WinbackCase, "event": CaseEvent, "customer": Customer, "lifecycle_event": LifecycleEvent,
           "coupon": Coupon, "contact": Contact, "order": Order, "complaint": Complaint,
           "prediction": CustomerPrediction}
_CASE_COLUMNS = sql.SQL(", ").join(sql.Identifier(f.column) for f in WinbackCase._meta.concrete_fields)


def _render(template: str, **parts: Any) -> str:
    return render(template, **_TABLES, **parts)


def _compose(template: str, **parts: Any) -> sql.Composed:
    return compose(template, **_TABLES, **parts)


# --- The rules that live once --------------------------------------------------------------------------------

# An open complaint doubles a case's priority (a recovery call goes before a plain win-back call).
PRIORITY_SQL = "COALESCE(predicted_value, revenue_12m) * CASE WHEN is_recovery THEN 2 ELSE 1 END"


def case_priority(*, revenue_12m: Decimal, is_recovery: bool, predicted_value: Decimal | None = None) -> Decimal:
    return (revenue_12m if predicted_value is None else predicted_value) * (2 if is_recovery else 1)


# A closed case leaves the queue: nothing ready, held or booked.
_CLOSED_QUEUE_SQL = "ready = false, claimed_by_id = NULL, lease_until = NULL, callback_at = NULL, next_call_at = NULL"
CLOSED_QUEUE_FIELDS = {"ready": False, "claimed_by": None, "lease_until": None, "callback_at": None,
                       "callback_agent": None, "next_call_at": None}


def case_closed_fields(*, status: str, reason: str, now: dt.datetime) -> dict[str, Any]:
    return {"status": status, "close_reason": reason[:200], "closed_at": now, **CLOSED_QUEUE_FIELDS}


# --- Events --------------------------------------------------------------------------------------------------

_RETURNING = " RETURNING id, status, is_recovery, close_reason"
# One event per changed row (PostgreSQL: in the statement that changed them).
_EVENTS_FROM_CHANGED = _render(
    " INSERT INTO {event} (case_id, kind, at, from_status, to_status, agent_id, actor, is_recovery, reason)"
    " SELECT id, %(ev_kind)s, %(now)s, COALESCE(%(ev_from)s, status), status, %(ev_agent)s, %(ev_actor)s,"
    " is_recovery, COALESCE(%(ev_reason)s, close_reason) FROM changed")
_INSERT_EVENT = _render(
    "INSERT INTO {event} (case_id, kind, at, from_status, to_status, agent_id, actor, is_recovery, reason)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)")


def _with_events(statement: str, *, then: str) -> str:
    """PostgreSQL: ``statement`` (a case UPDATE or INSERT, before RETURNING) and one CaseEvent per row it
    changed, in one statement; ``then`` reads the changed rows back."""
    return "WITH changed AS (" + statement + _RETURNING + "), events AS (" + _EVENTS_FROM_CHANGED + ") " + then


def _event_params(*, kind: str, actor: str, from_status: str | None = None, agent_id: int | None = None,
                  reason: str | None = None) -> dict[str, Any]:
    return {"ev_kind": kind, "ev_from": from_status, "ev_agent": agent_id, "ev_actor": actor, "ev_reason": reason}


def _apply(cur, statement: str, params: dict[str, Any], *, kind: str, actor: str, from_status: str | None = None,
           agent_id: int | None = None, reason: str | None = None) -> int:
    """Run a case UPDATE or INSERT (``statement`` stops before RETURNING) and write one CaseEvent per row it
    changed; returns how many. ``from_status`` None means "the status it still has" (a change that keeps
    it), ``reason`` None means the row's close_reason."""
    events = _event_params(kind=kind, actor=actor, from_status=from_status, agent_id=agent_id, reason=reason)
    if is_postgresql():
        cur.execute(_with_events(statement, then="SELECT count(*) FROM changed"), {**params, **events})
        return cur.fetchone()[0]
    cur.execute(statement + _RETURNING, params)
    rows = cur.fetchall()
    cur.executemany(_INSERT_EVENT, [
        (case_id, kind, params["now"], status if from_status is None else from_status, status, agent_id, actor,
         is_recovery, close_reason if reason is None else reason)
        for case_id, status, is_recovery, close_reason in rows])
    return len(rows)


def _event_row(case: WinbackCase, *, kind: str, now: dt.datetime, from_status: str, actor: str,
               agent: AbstractBaseUser | None = None, agent_id: int | None = None, reason: str = "") -> CaseEvent:
    return CaseEvent(case=case, kind=kind, at=now, from_status=from_status, to_status=case.status,
                     agent_id=agent.pk if agent is not None else agent_id, actor=actor,
                     is_recovery=case.is_recovery, reason=reason[:200])


def _event(case: WinbackCase, **fields: Any) -> None:
    _event_row(case, **fields).save()


# --- The lifecycle scan's changes (set-based, over the batch in lc_customers / lc_gone) ---------------------

# Index: one_open_case_per_customer is not used; lapse_event_id is unique (the case's OneToOne).
_VOID_GONE = _render(
    "UPDATE {case} SET status = 'void', closed_at = %(now)s, updated_at = %(now)s, " + _CLOSED_QUEUE_SQL + ","
    " close_reason = 'No longer lapsed: the history or the dormancy policy changed.'"
    " WHERE status = 'open' AND lapse_event_id IN (SELECT id FROM lc_gone)")
_UNLINK_GONE = _render("UPDATE {case} SET lapse_event_id = NULL WHERE lapse_event_id IN (SELECT id FROM lc_gone)")


def cases_void_gone(*, cur, params: dict[str, Any]) -> int:
    """The open cases of lapses that no longer hold (lc_gone) become void, then let go of those events."""
    voided = _apply(cur, _VOID_GONE, params, kind=Kind.CLOSED, from_status=Status.OPEN, actor="lifecycle scan")
    cur.execute(_UNLINK_GONE)
    return voided


def _minus_days(expr: str, days: int) -> str:
    days = int(days)
    if is_postgresql():
        return "(" + expr + " - interval '" + str(days) + " days')"
    return "strftime('%%Y-%%m-%%d %%H:%%M:%%f', " + expr + ", '-" + str(days) + " days')"


# Indexes: case_customer_time (the batch's cases), lifecycle_event_kind_time is not needed (the join is by
# customer: lifecycle_event_unique), contact_customer_time for the attribution window.
_CLOSE_REACTIVATED = (
    "UPDATE {case} SET"
    "  status = CASE WHEN EXISTS ("
    "      SELECT 1 FROM {contact} ct"
    "      WHERE ct.customer_id = {case}.customer_id AND ct.direction = 'outbound'"
    "        AND ct.occurred_at >= {case}.lapsed_at AND ct.occurred_at <= r.at AND ct.occurred_at >= {window})"
    "    OR EXISTS ("
    "      SELECT 1 FROM {coupon} cp"
    "      WHERE cp.case_id = {case}.id"
    "        AND (cp.redeemed_order_id = r.order_id OR (cp.issued_at <= r.at AND cp.issued_at >= {window})))"
    "    THEN 'won' ELSE 'returned' END,"
    "  closed_at = r.at, reactivation_order_id = r.order_id, updated_at = %(now)s, " + _CLOSED_QUEUE_SQL + ","
    "  close_reason = 'Ordered again.'"
    " FROM (SELECT x.case_id, x.at,"
    "        (SELECT min(o.id) FROM {order} o WHERE o.customer_id = x.customer_id AND o.ordered_at = x.at) AS order_id"
    "       FROM (SELECT wc.id AS case_id, wc.customer_id,"
    "               (SELECT min(e.occurred_at) FROM {lifecycle_event} e WHERE e.customer_id = wc.customer_id"
    "                  AND e.kind = 'reactivated' AND e.occurred_at > wc.lapsed_at) AS at"
    "             FROM {open_cases_of_batch}{fence}) x"
    "       WHERE x.at IS NOT NULL{fence}) r"
    " WHERE {case}.id = r.case_id"
)
# The batch's open win-back cases (wc), found from the batch's customers (not scoped by the id list: with
# "= ANY(ids)" the planner chose a plan 30x slower at 1M customers). PostgreSQL: a lateral subquery kept
# apart (OFFSET 0), so the plan starts from lc_customers whatever the statistics of the cases say; joined
# the other way round (the cases table freshly filled and not yet analysed looks empty), an incremental
# batch of 1,000 customers read every open case and its events. Index: one_open_case_per_customer.
_OPEN_CASES_OF_BATCH = {
    True: "lc_customers b CROSS JOIN LATERAL (SELECT c.id, c.customer_id, c.lapsed_at FROM {case} c"
          " WHERE c.customer_id = b.customer_id AND c.status = 'open' AND c.kind = 'winback' OFFSET 0) wc",
    False: "lc_customers b JOIN {case} wc ON wc.customer_id = b.customer_id AND wc.status = 'open' AND wc.kind = 'winback'",
}
# PostgreSQL: subqueries kept apart, so each case's reactivation instant is looked up once, not once per use
# (SQLite has no OFFSET without LIMIT, and evaluates them as written).
_FENCE = {True: " OFFSET 0", False: ""}


def cases_close_reactivated(*, cur, params: dict[str, Any], window_days: int) -> int:
    """A reactivation closes the open case: won if a contact or coupon of the case falls inside the
    attribution window before the order, else the customer returned on their own (docs/metrics.md s.1)."""
    window = sql.SQL(_minus_days("r.at", window_days))
    statement = _render(_CLOSE_REACTIVATED, window=window,
                        open_cases_of_batch=_compose(_OPEN_CASES_OF_BATCH[is_postgresql()]),
                        fence=_FENCE[is_postgresql()])
    return _apply(cur, statement, params, kind=Kind.CLOSED, from_status=Status.OPEN, actor="lifecycle scan")


_OPEN_FOR_LAPSES = (
    "INSERT INTO {case} (customer_id, kind, lapse_event_id, lapsed_at, opened_at, status, holdout, ready,"
    "                    attempts, awaiting_return, is_recovery, revenue_12m, predicted_value, priority,"
    "                    close_reason, created_at, updated_at)"
    " SELECT customer_id, 'winback', event_id, lapsed_at, %(now)s, 'open', holdout, NOT holdout, 0, false,"
    "        is_recovery, revenue_12m, predicted_value, " + PRIORITY_SQL + ", '', %(now)s, %(now)s"
    " FROM (SELECT lost.*, {holdout} AS holdout FROM ("
    "   SELECT e.customer_id, e.id AS event_id, e.occurred_at AS lapsed_at,"
    "          EXISTS (SELECT 1 FROM {complaint} k"
    "                  WHERE k.customer_id = e.customer_id AND k.status <> 'resolved') AS is_recovery,"
    "          (SELECT COALESCE(sum(o.amount), 0) FROM {order} o"
    "           WHERE o.customer_id = e.customer_id AND o.ordered_at > {year_before}"
    "             AND o.ordered_at <= e.occurred_at) AS revenue_12m,"
    "          (SELECT p.predicted_clv_12m FROM {prediction} p WHERE p.customer_id = e.customer_id) AS predicted_value"
    "   FROM lc_customers b"
    "   JOIN {lifecycle_event} e"
    "     ON e.customer_id = b.customer_id AND e.kind = b.last_kind AND e.occurred_at = b.last_at"
    "   WHERE b.status IN ('lapsed', 'cancelled')"
    " ) AS lost) AS drawn"
    " WHERE true"
    # A case already opened for this lapse (unique lapse_event) or an open case of the customer
    # (one_open_case_per_customer) makes the row a no-op: the constraints decide, under any concurrency.
    " ON CONFLICT DO NOTHING"
)


def cases_open_for_lapses(*, cur, params: dict[str, Any], holdout_share: float) -> int:
    """One case per current lapse or cancellation of the batch; the holdout draw is stored, never redrawn."""
    holdout = sql.SQL("random() < %(holdout)s" if is_postgresql()
                      else "(abs(random()) %% 1000000) < %(holdout)s * 1000000")
    statement = _render(_OPEN_FOR_LAPSES, holdout=holdout, year_before=sql.SQL(_minus_days("e.occurred_at", 365)))
    return _apply(cur, statement, {**params, "holdout": holdout_share}, kind=Kind.OPENED, from_status="",
                  actor="lifecycle scan", reason="Lapsed.")


# Index: case_customer_time; complaint_customer_status for the EXISTS.
_REFRESH_RECOVERY = (
    "UPDATE {case} SET is_recovery = NOT is_recovery, updated_at = %(now)s,"
    "  priority = COALESCE(predicted_value, revenue_12m) * CASE WHEN is_recovery THEN 1 ELSE 2 END"  # of the flipped flag
    " WHERE status = 'open' {scope} AND is_recovery <> EXISTS ("
    "   SELECT 1 FROM {complaint} k WHERE k.customer_id = {case}.customer_id AND k.status <> 'resolved')"
)
_SINCE = "AND customer_id IN (SELECT customer_id FROM {complaint} WHERE updated_at >= %(since)s)"


def cases_refresh_recovery(*, now: dt.datetime, since: dt.datetime | None = None,
                           customer_ids: list[int] | None = None) -> int:
    """Complaints open and close without touching the order history: keep the open cases' recovery flag
    (and so their priority) current. With ``since``, the customers with a complaint changed after it; with
    ``customer_ids``, those."""
    adapt = connection.ops.adapt_datetimefield_value
    params: dict[str, Any] = {"now": adapt(now)}
    if since is not None:
        scope, params["since"] = _compose(_SINCE), adapt(since)
    elif customer_ids is not None:
        scope, params["ids"] = sql.SQL("AND {ids}").format(ids=id_list_condition("customer_id")), id_list_param(customer_ids)
    else:
        scope = sql.SQL("")
    with connection.cursor() as cur:
        return _apply(cur, _render(_REFRESH_RECOVERY, scope=scope), params, kind=Kind.RECOVERY,
                      actor="complaints", reason="An open complaint changed.")


# Index: the prediction's primary key per case; open cases are a small share of all.
_REFRESH_PREDICTED_VALUE = (
    "UPDATE {case} SET predicted_value = p.v, updated_at = %(now)s,"
    "  priority = COALESCE(p.v, {case}.revenue_12m) * CASE WHEN {case}.is_recovery THEN 2 ELSE 1 END"
    " FROM (SELECT c.id, (SELECT pr.predicted_clv_12m FROM {prediction} pr WHERE pr.customer_id = c.customer_id) AS v"
    "       FROM {case} c WHERE c.status = 'open' {scope}) p"
    " WHERE {case}.id = p.id"
    "   AND ({case}.predicted_value <> p.v OR ({case}.predicted_value IS NULL) <> (p.v IS NULL))"
)


def cases_refresh_predicted_value(*, now: dt.datetime, customer_ids: list[int] | None = None) -> int:
    """After a fit (everyone) or a rescore (``customer_ids``): the open cases' predicted value, and so their
    priority, from the customers' current predictions. Not a change of the case's state (no CaseEvent): the
    queue's order follows the prediction, as it follows a complaint."""
    params: dict[str, Any] = {"now": connection.ops.adapt_datetimefield_value(now)}
    scope = sql.SQL("")
    if customer_ids is not None:
        scope, params["ids"] = sql.SQL("AND {ids}").format(ids=id_list_condition("c.customer_id")), id_list_param(customer_ids)
    with connection.cursor() as cur:
        cur.execute(_render(_REFRESH_PREDICTED_VALUE, scope=scope), params)
        return cur.rowcount


# --- The queue: wake, claim, release ---------------------------------------------------------------------------

_WAKE_SET = "ready = true, next_call_at = NULL, claimed_by_id = NULL, lease_until = NULL"
# Index: case_wakeup (open, not ready, next_call_at set), in next_call_at order.
_WAKE_PICK = ("SELECT id, claimed_by_id AS was FROM {case} WHERE status = 'open' AND NOT ready AND NOT holdout"
              " AND next_call_at <= %(now)s ORDER BY next_call_at LIMIT 500")
# suppressed_at: an erased or suppressed person also has do-not-call set; checked again at no cost (the
# customer row is read anyway) in case a future path sets one without the other.
_CALLABLE = ("c.status = 'open' AND c.ready AND NOT c.holdout AND c.attempts < %(max_attempts)s"
             " AND cu.do_not_call_since IS NULL AND cu.suppressed_at IS NULL AND cu.phone <> ''")
# A case an agent put back waits behind every other callable case until skipped_until (so "next" never
# hands the same customer straight back); the two first branches of the claim leave it out.
_NOT_SKIPPED = " AND (c.skipped_until IS NULL OR c.skipped_until <= %(now)s)"
_DUE_CALLBACK = "c.callback_at <= %(now)s AND (c.callback_agent_id = %(me)s OR c.callback_at <= %(grace_over)s)"
# Index: case_callbacks (open, callback_at set), in callback order.
_CALLBACKS = ("SELECT {pick} FROM {case} c JOIN {customer} cu ON cu.id = c.customer_id"
              " WHERE " + _CALLABLE + " AND c.callback_at IS NOT NULL AND " + _DUE_CALLBACK + _NOT_SKIPPED +
              "{zone_test} ORDER BY c.callback_at, c.id")
# Index: case_queue (open, ready, not held out), in queue order.
_QUEUE = ("SELECT {pick} FROM {case} c JOIN {customer} cu ON cu.id = c.customer_id"
          " WHERE " + _CALLABLE + " AND c.callback_at IS NULL" + _NOT_SKIPPED + "{zone_test}"
          " ORDER BY c.is_recovery DESC, c.priority DESC, c.id")
# Index: case_skipped (the few cases put back). Last: only when nobody else is callable, the ones put back
# earliest first.
_SKIPPED = ("SELECT {pick} FROM {case} c JOIN {customer} cu ON cu.id = c.customer_id"
            " WHERE " + _CALLABLE + " AND c.skipped_until > %(now)s"
            " AND (c.callback_at IS NULL OR (" + _DUE_CALLBACK + ")){zone_test}"
            " ORDER BY c.skipped_until, c.id")
_CLAIM_SET = ("claimed_by_id = %(me)s, lease_until = %(lease_until)s, ready = false,"
              " next_call_at = %(lease_until)s, skipped_until = NULL, updated_at = %(now)s")
# Calling hours against the zones open this minute, a text[] constant (see case_claim_statement).
_ZONE_TEST = (" AND CASE WHEN strpos(cu.call_zones, ',') = 0"
              " THEN COALESCE(NULLIF(cu.call_zones, ''), %(business_tz)s) = ANY({zones}::text[])"
              " ELSE string_to_array(cu.call_zones, ',') <@ {zones}::text[] END")
_EVENT_COLUMNS = "case_id, kind, at, from_status, to_status, agent_id, actor, is_recovery, reason"
_CLAIM_ONE = (
    "WITH picked AS (" + _WAKE_PICK + " FOR UPDATE SKIP LOCKED),"
    " woken AS (UPDATE {case} w SET " + _WAKE_SET + " FROM picked WHERE w.id = picked.id"
    "           RETURNING w.id, w.status, w.is_recovery, picked.was),"
    " expired AS (INSERT INTO {event} (" + _EVENT_COLUMNS + ")"
    "           SELECT id, 'released', %(now)s, status, status, was, 'queue', is_recovery, 'The lease ran out.'"
    "           FROM woken WHERE was IS NOT NULL),"
    " claimed AS (UPDATE {case} SET " + _CLAIM_SET +
    "           WHERE id = COALESCE(({callbacks} LIMIT 1 FOR UPDATE OF c SKIP LOCKED),"
    "                               ({queue} LIMIT 1 FOR UPDATE OF c SKIP LOCKED),"
    "                               ({skipped} LIMIT 1 FOR UPDATE OF c SKIP LOCKED))"
    "             AND NOT EXISTS (SELECT 1 FROM {case} h WHERE h.claimed_by_id = %(me)s AND h.status = 'open')"
    "           RETURNING {case_columns}),"
    " events AS (INSERT INTO {event} (" + _EVENT_COLUMNS + ")"
    "           SELECT id, 'claimed', %(now)s, status, status, %(me)s, 'agent', is_recovery, '' FROM claimed)"
    " SELECT * FROM claimed"
)


@functools.lru_cache(maxsize=8)
def case_claim_statement(open_zones: str) -> str:
    """The whole claim on PostgreSQL as one statement, for the zones open this minute (a text[] literal).

    It wakes the cases whose gap, callback time or lease is over (they become callable from the next claim:
    a statement sees one snapshot; an expired lease is a "released" event), then takes a due callback first
    (COALESCE stops at the first case found), else the head of the queue, else a case an agent put back
    (skipped_until, see _SKIPPED), skipping cases other agents are
    locking, and records the claim. The open zones are a constant of the statement: the set changes a few
    times an hour, and as a constant it is parsed once per prepared statement and hashed for a customer
    with a single zone, instead of a few hundred names sent, parsed and scanned on every claim.
    """
    pick = {"pick": sql.SQL("c.id"), "zone_test": _compose(_ZONE_TEST, zones=sql.Literal(open_zones))}
    return _render(_CLAIM_ONE, callbacks=_compose(_CALLBACKS, **pick), queue=_compose(_QUEUE, **pick),
                   skipped=_compose(_SKIPPED, **pick), case_columns=_CASE_COLUMNS)


def case_claim_one(*, agent: AbstractBaseUser, now: dt.datetime, lease_until: dt.datetime, max_attempts: int,
                   grace_over: dt.datetime, open_zones: str, business_tz: str) -> WinbackCase | None:
    """PostgreSQL: wake, pick and claim in one prepared statement (see case_claim_statement)."""
    rows = fetch_all(case_claim_statement(open_zones), {
        "max_attempts": max_attempts, "me": agent.pk, "now": now, "lease_until": lease_until,
        "grace_over": grace_over, "business_tz": business_tz,
    })
    return instances(WinbackCase, rows)[0] if rows else None


_WAKE_PICK_ROWS = _render(_WAKE_PICK)
_WAKE = _render("UPDATE {case} SET " + _WAKE_SET + " WHERE {ids}", ids=id_list_condition("id"))
_CANDIDATE_PAGES = {name: _render(template + " LIMIT 200 OFFSET %(offset)s", pick=sql.SQL("c.id, cu.call_zones"),
                                  zone_test=sql.SQL(""))
                    for name, template in (("callbacks", _CALLBACKS), ("queue", _QUEUE), ("skipped", _SKIPPED))}
_CLAIM = _render("UPDATE {case} SET " + _CLAIM_SET + " WHERE id = %(case_id)s")


def cases_wake_due(*, now: dt.datetime) -> int:
    """Elsewhere than PostgreSQL (one writer at a time): cases whose gap, callback time or lease is over
    become ready again, a bounded page at a time; an expired lease is a "released" event."""
    params = {"now": connection.ops.adapt_datetimefield_value(now)}
    with connection.cursor() as cur:
        cur.execute(_WAKE_PICK_ROWS, params)
        rows = cur.fetchall()
        if not rows:
            return 0
        cur.execute(_WAKE, {"ids": id_list_param([case_id for case_id, _ in rows])})
        holders = {case_id: was for case_id, was in rows if was is not None}
        CaseEvent.objects.bulk_create(
            _event_row(case, kind=Kind.RELEASED, now=now, from_status=case.status, actor="queue",
                       agent_id=holders[case.pk], reason="The lease ran out.")
            for case in WinbackCase.objects.filter(pk__in=holders))
    return len(rows)


def case_claim_first_callable(*, agent: AbstractBaseUser, now: dt.datetime, lease_until: dt.datetime,
                              max_attempts: int, grace_over: dt.datetime,
                              callable_now: Callable[[str], bool]) -> int | None:
    """Elsewhere than PostgreSQL: the calling hours are tested here (``callable_now(call_zones)``), a page
    of candidates at a time, due callbacks first, cases put back last; the first callable case is claimed.
    Returns its id."""
    adapt = connection.ops.adapt_datetimefield_value
    params = {"max_attempts": max_attempts, "me": agent.pk, "grace_over": adapt(grace_over), "now": adapt(now),
              "lease_until": adapt(lease_until)}
    with connection.cursor() as cur:
        for statement in _CANDIDATE_PAGES.values():
            offset = 0
            while True:
                cur.execute(statement, {**params, "offset": offset})
                rows = cur.fetchall()
                for case_id, zones in rows:
                    if callable_now(zones):
                        _apply(cur, _CLAIM, {**params, "case_id": case_id}, kind=Kind.CLAIMED, actor="agent",
                               agent_id=agent.pk, reason="")
                        return case_id
                if len(rows) < 200:
                    break
                offset += 200
    return None


class NotYourCase(Exception):
    """The case is not held by this agent (another agent's, expired and taken, or closed)."""


_RELEASE = ("UPDATE {case} SET claimed_by_id = NULL, lease_until = NULL, ready = %(yes)s, next_call_at = NULL,"
            " skipped_until = %(skipped_until)s, updated_at = %(now)s"
            " WHERE id = %(id)s AND claimed_by_id = %(me)s AND status = 'open'")
_RELEASE_PLAIN = _render(_RELEASE)
# One prepared statement on PostgreSQL (releases are frequent): the release and its event.
_RELEASE_PG = _with_events(_RELEASE_PLAIN, then="SELECT id FROM changed")


def case_release(*, agent: AbstractBaseUser, case_id: int, now: dt.datetime | None = None,
                 skip_minutes: int = 0) -> None:
    """Hand the held case back to the queue (only the holder's open case is touched); NotYourCase else.

    With ``skip_minutes`` the agent put it back: it waits behind every other callable case that long. An
    offer's code reserved on it and never saved is dropped (it was never issued)."""
    now = now or timezone.now()
    adapt = connection.ops.adapt_datetimefield_value
    skipped_until = now + dt.timedelta(minutes=skip_minutes) if skip_minutes else None
    reason = "Put back in the queue." if skip_minutes else ""
    params = {"id": case_id, "me": agent.pk, "yes": True, "now": now, "skipped_until": skipped_until}
    if is_postgresql():
        events = _event_params(kind=Kind.RELEASED, actor="agent", agent_id=agent.pk, reason=reason)
        released = len(fetch_all(_RELEASE_PG, {**params, **events}))
    else:
        with connection.cursor() as cur:
            released = _apply(cur, _RELEASE_PLAIN, {**params, "now": adapt(now), "skipped_until": adapt(skipped_until)},
                              kind=Kind.RELEASED, actor="agent", agent_id=agent.pk, reason=reason)
    if not released:
        raise NotYourCase(f"Case {case_id} is not held by you.")
    CouponReservation.objects.filter(case_id=case_id).delete()


def case_held(*, agent: AbstractBaseUser, case_id: int) -> WinbackCase:
    """The agent's held open case, locked for the change that follows; NotYourCase else."""
    case = (
        WinbackCase.objects.select_for_update(of=("self",)).select_related("customer")
        .filter(pk=case_id, claimed_by=agent, status=Status.OPEN).first()
    )
    if case is None:
        raise NotYourCase(f"Case {case_id} is not held by you.")
    return case


# --- An agent's call -----------------------------------------------------------------------------------------

def case_after_call(*, case: WinbackCase, agent: AbstractBaseUser, outcome: str, now: dt.datetime,
                    max_attempts: int, retry_gap_minutes: int | None, escalated_gap_minutes: int,
                    callback_at: dt.datetime | None = None, reason_name: str = "") -> WinbackCase:
    """What a recorded call does to the case it was made for (the caller holds ``case`` locked).

    The claim ends and the attempt counts; then, by outcome: a retry after its gap (lost after the last
    attempt), a booked callback, awaiting the promised order, lost (declined, wrong number, do-not-call),
    or a recovery call after an escalated complaint. A care call is done once the customer is reached.
    """
    changes: dict[str, Any] = {"claimed_by": None, "lease_until": None, "attempts": F("attempts") + 1,
                               "last_attempt_at": now, "callback_at": None, "callback_agent": None,
                               "ready": False, "next_call_at": None, "updated_at": now}
    if retry_gap_minutes is not None:
        if case.attempts + 1 >= max_attempts:
            changes |= case_closed_fields(status=Status.LOST, reason=f"No answer after {max_attempts} attempts.", now=now)
        else:
            changes["next_call_at"] = now + dt.timedelta(minutes=retry_gap_minutes)
    elif outcome == Contact.Outcome.CALLBACK_REQUESTED:
        changes |= {"callback_at": callback_at, "callback_agent": agent, "next_call_at": callback_at}
    elif outcome == Contact.Outcome.REACHED_WILL_RETURN:
        changes["awaiting_return"] = True  # no more calls; the order closes the case as won
    elif outcome == Contact.Outcome.REACHED_DECLINED:
        changes |= case_closed_fields(status=Status.LOST, reason=f"Declined{': ' + reason_name if reason_name else ''}.", now=now)
    elif outcome == Contact.Outcome.WRONG_NUMBER:
        changes |= case_closed_fields(status=Status.LOST, reason="Wrong number: the phone was cleared.", now=now)
    elif outcome == Contact.Outcome.DO_NOT_CALL:
        changes |= case_closed_fields(status=Status.LOST, reason="The customer asked not to be called.", now=now)
    elif outcome == Contact.Outcome.COMPLAINT_ESCALATED:
        changes |= {"is_recovery": True, "priority": case_priority(revenue_12m=case.revenue_12m, is_recovery=True, predicted_value=case.predicted_value),
                    "next_call_at": now + dt.timedelta(minutes=escalated_gap_minutes)}
    if case.kind == WinbackCase.Kind.CARE:
        # A care call has nothing to win back: once the customer is reached (or cannot be), it is done.
        if outcome in (Contact.Outcome.REACHED_WILL_RETURN, Contact.Outcome.REACHED_DECLINED):
            changes |= case_closed_fields(status=Status.DONE, reason="Care call made.", now=now)
        elif changes.get("status") == Status.LOST:
            changes["status"] = Status.DONE
    before = case.status
    WinbackCase.objects.filter(pk=case.pk).update(**changes)
    case.refresh_from_db()
    _event(case, kind=Kind.CLOSED if case.status != before else Kind.WORKED, now=now, from_status=before,
           actor="agent", agent=agent, reason=case.close_reason if case.status != before else outcome)
    return case


def cases_stop_calls(*, customer: Customer, except_case: WinbackCase, agent: AbstractBaseUser, now: dt.datetime) -> None:
    """The customer asked not to be called: every other open case of theirs stops calling at once."""
    others = list(WinbackCase.objects.select_for_update().filter(customer=customer, status=Status.OPEN)
                  .exclude(pk=except_case.pk))
    WinbackCase.objects.filter(pk__in=[c.pk for c in others]).update(
        ready=False, next_call_at=None, callback_at=None, callback_agent=None, claimed_by=None, lease_until=None,
        updated_at=now)
    CaseEvent.objects.bulk_create(
        _event_row(case, kind=Kind.WORKED, now=now, from_status=case.status, actor="agent", agent=agent,
                   reason="Do not call: no more calls.") for case in others)


# --- Care calls ----------------------------------------------------------------------------------------------

@transaction.atomic
def case_care_call_request(*, customer: Customer, now: dt.datetime) -> WinbackCase | None:
    """Put a recovery call for the customer in the queue (an NPS detractor, a discount email stopped by an
    open complaint): onto their open win-back case when there is one, else onto a care case (one open per
    customer, never counted in the win-back KPIs). None when they must not be called (holdout)."""
    open_cases = {c.kind: c for c in WinbackCase.objects.select_for_update().filter(customer=customer, status=Status.OPEN)}
    case = open_cases.get(WinbackCase.Kind.WINBACK) or open_cases.get(WinbackCase.Kind.CARE)
    if case is not None:
        if case.holdout:
            return None
        claimed = case.claimed_by_id is not None and case.lease_until and case.lease_until > now
        changes: dict[str, Any] = {"is_recovery": True, "updated_at": now,
                                   "priority": case_priority(revenue_12m=case.revenue_12m, is_recovery=True, predicted_value=case.predicted_value)}
        if not claimed and case.callback_at is None:
            changes |= {"ready": True, "next_call_at": None}
        WinbackCase.objects.filter(pk=case.pk).update(**changes)
        case.refresh_from_db()
        _event(case, kind=Kind.RECOVERY, now=now, from_status=case.status, actor="cadence", reason="A care call was asked for.")
        return case
    revenue = (customer.orders.filter(ordered_at__gt=now - dt.timedelta(days=365), ordered_at__lte=now)
               .aggregate(s=Sum("amount"))["s"]) or Decimal("0")
    predicted = CustomerPrediction.objects.filter(customer=customer).values_list("predicted_clv_12m", flat=True).first()
    try:
        with transaction.atomic():
            case = WinbackCase.objects.create(
                customer=customer, kind=WinbackCase.Kind.CARE, lapsed_at=now, opened_at=now, is_recovery=True,
                revenue_12m=revenue, predicted_value=predicted, ready=True,
                priority=case_priority(revenue_12m=revenue, is_recovery=True, predicted_value=predicted),
                close_reason="", holdout=False, status=Status.OPEN,
            )
            _event(case, kind=Kind.OPENED, now=now, from_status="", actor="cadence", reason="A care call was asked for.")
            return case
    except IntegrityError:  # opened by a concurrent request: the one open care case serves both
        return WinbackCase.objects.get(customer=customer, status=Status.OPEN, kind=WinbackCase.Kind.CARE)


# --- Personal-data erasure -----------------------------------------------------------------------------------

# Index: case_customer_time. A win-back case ends as lost (it keeps counting as opened in its period: a void
# one would not, and past KPIs must not move); a care case as done, as when its call cannot be made.
_CLOSE_FOR_ERASURE = _render(
    "UPDATE {case} SET status = CASE WHEN kind = 'care' THEN 'done' ELSE 'lost' END, closed_at = %(now)s,"
    " updated_at = %(now)s, close_reason = %(reason)s, callback_agent_id = NULL, " + _CLOSED_QUEUE_SQL +
    " WHERE customer_id = %(customer)s AND status = 'open'")


def cases_close_for_erasure(*, customer: Customer, now: dt.datetime) -> int:
    """The erased customer's open cases close at once, each with its event; returns how many."""
    params = {"now": connection.ops.adapt_datetimefield_value(now), "customer": customer.pk,
              "reason": "The customer's personal data was erased."}
    CouponReservation.objects.filter(case__customer=customer).delete()  # a code shown, never issued
    with connection.cursor() as cur:
        return _apply(cur, _CLOSE_FOR_ERASURE, params, kind=Kind.CLOSED, from_status=Status.OPEN, actor="erasure")


def case_notes_erase(*, customer: Customer) -> int:
    """The agents' free-text notes on the customer's calls are blanked; outcomes, reasons and times stay."""
    return Disposition.objects.filter(case__customer=customer).exclude(note="").update(note="")


# --- Replay --------------------------------------------------------------------------------------------------

def case_replay(*, case_id: int) -> dict[str, Any]:
    """A case's state rebuilt from its events alone: status, who holds it, whether it is a recovery call."""
    state: dict[str, Any] = {"status": None, "claimed_by_id": None, "is_recovery": None}
    for event in CaseEvent.objects.filter(case_id=case_id).order_by("at", "id"):
        if state["status"] is not None and event.from_status and event.from_status != state["status"]:
            raise ValueError(f"Event {event.pk} starts from {event.from_status}, the case was {state['status']}.")
        state["status"], state["is_recovery"] = event.to_status, event.is_recovery
        if event.kind == Kind.CLAIMED:
            state["claimed_by_id"] = event.agent_id
        elif event.kind in (Kind.RELEASED, Kind.WORKED, Kind.CLOSED):
            state["claimed_by_id"] = None
    return state
