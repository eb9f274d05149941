"""What saving a dormancy policy would do, before it is saved: how many customers the rebuild covers and how
many of them the lifecycle rule (docs/metrics.md s.1) would call lapsed, at risk, cancelled or active now,
under the values of a form and under the policy in use, from the same order histories at the same instant.

A customer's status is their latest event (lifecycle_rules.status_of), and the events of an order's segment
come after those of every segment before it. So one pass over the orders with the engine's window functions
(lifecycle_sql.EVENTS_SQL: i, t1, the next order, the purchase days of the model rule) gives each segment opened
by now what it leaves as the latest event, if any (_segment_code); the customer's status is that of their latest
segment with one. This counts, it stores nothing, and nothing loops over customers in Python; it runs on
PostgreSQL and SQLite alike, for the policy in use and the proposed one in the same statement. The thresholds
are the engine's, in its units (PolicyParams: hundredths, whole microseconds, rounded down as EVENTS_SQL does;
on PostgreSQL the model rule's is EVENTS_SQL's own expression); tests/winback/test_policy_preview.py holds the
counts to what a saved policy's rebuild stores.

Cost: one read of the orders in index order (order_customer_time) and of the customers, about what the rebuild's
own computing pass costs without its writes, bounded on PostgreSQL by PREVIEW_TIMEOUT_MS; past it the preview
gives up (PolicyPreviewTooSlow) and saving still works.
"""

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from core.dialect import is_postgresql
from core.sql import render
from crm.models import Cancellation, Customer, Order
from winback.models import DormancyPolicy
from winback.services.lifecycle_sql import MODEL_RULE_PARTS
from winback.services.policy import POLICY_FIELDS, PolicyParams, policy_current, policy_params

# A manager waits for the answer on the form: beyond this the preview is not worth the database's time.
PREVIEW_TIMEOUT_MS = 20_000
STATUSES = ("active", "at_risk", "lapsed", "cancelled", "prospect")
# The values that move no status (they shape the cases opened after a lapse), though a save still rebuilds.
CASE_ONLY_FIELDS = ("holdout_share", "attribution_window_days")


class PolicyPreviewTooSlow(Exception):
    """The count took longer than PREVIEW_TIMEOUT_MS."""


@dataclass(frozen=True)
class StatusCounts:
    active: int = 0
    at_risk: int = 0
    lapsed: int = 0
    cancelled: int = 0
    prospect: int = 0


@dataclass(frozen=True)
class PolicyPreview:
    at: dt.datetime
    customers: int  # every customer: a save rebuilds every lifecycle (lifecycle_scan(full=True))
    current_version: int
    current: StatusCounts
    proposed: StatusCounts
    changed_fields: tuple[str, ...]

    @property
    def statuses_may_change(self) -> bool:
        return any(f not in CASE_ONLY_FIELDS for f in self.changed_fields)


def _span_us(later: str, earlier: str) -> str:
    """Microseconds from ``earlier`` to ``later`` (both timestamps): the engine's span_us on PostgreSQL,
    Django's own exact difference on SQLite (its datetimes are text)."""
    if is_postgresql():
        return f"((extract(epoch FROM {later}) - extract(epoch FROM {earlier})) * 1000000)::bigint"
    return f"django_timestamp_diff({later}, {earlier})"


def _purchase_day(column: str) -> str:
    if is_postgresql():
        return f"({column} AT TIME ZONE %(tz)s)::date"
    return f"django_datetime_cast_date({column}, %(tz)s, %(conn_tz)s)"


def _least(*parts: str) -> str:
    return ("LEAST" if is_postgresql() else "min") + "(" + ", ".join(parts) + ")"


def _greatest(*parts: str) -> str:
    return ("GREATEST" if is_postgresql() else "max") + "(" + ", ".join(parts) + ")"


def _model_us(prefix: str) -> str:
    """The model rule's lapse threshold (PolicyParams.model_threshold_us), its floating-point operations in
    the engine's order: on PostgreSQL the engine's own expression, on SQLite the same with SQLite's casts."""
    if is_postgresql():
        return MODEL_RULE_PARTS["model_us"].replace("%(", f"%({prefix}")
    week = "604800000000.0"
    tx = f"span_us / {week}"
    p = prefix
    weeks = (f"((%({p}alpha)s + {tx}) * power((1.0 / %({p}p_alive_min)s - 1.0) * (%({p}b)s + x - 1) / %({p}a)s,"
             f" 1.0 / (%({p}r)s + x)) - %({p}alpha)s - {tx}) * {week}")
    bounded = _least(_greatest(weeks, f"CAST(%({p}min_us)s AS REAL)"), f"CAST(%({p}max_us)s AS REAL)")
    return f"CASE WHEN x >= 1 THEN CAST(floor({bounded}) AS INTEGER) ELSE %({p}default_us)s END"


def _thresholds(p: PolicyParams, prefix: str) -> tuple[str, str]:
    """(lapse, at-risk) thresholds in microseconds after an order: lifecycle_sql.EVENTS_SQL's thr."""
    q = prefix
    if p.model_rule:
        lapse = _model_us(prefix)
        return lapse, f"({lapse}) * %({q}AK)s / %({q}K)s"

    def rhythm(k: str) -> str:
        return _least(_greatest(f"%({q}{k})s * span_us / (100 * (i - 1))", f"%({q}min_us)s"), f"%({q}max_us)s")

    return (f"CASE WHEN i >= %({q}min_orders)s THEN {rhythm('K')} ELSE %({q}default_us)s END",
            f"CASE WHEN i >= %({q}min_orders)s THEN {rhythm('AK')} ELSE %({q}default_us)s * %({q}AK)s / %({q}K)s END")


# What an order's segment leaves as the customer's latest event by now, when no later segment has one (the
# events of a segment all come after those of the segments before it): 0 none, 1 a lapse or cancellation
# that the next order (even one dated ahead) already reactivated, or an at-risk crossing the next order ended
# (no event of its own: the status is active again), 2 cancelled, 3 lapsed, 4 at risk.
_ACTIVE, _CANCELLED, _LAPSED, _AT_RISK = 1, 2, 3, 4
CODE_STATUS = {_ACTIVE: "active", _CANCELLED: "cancelled", _LAPSED: "lapsed", _AT_RISK: "at_risk"}


def _segment_code(lapse: str, risk: str) -> str:
    return (
        f"CASE WHEN c <= %(now)s THEN CASE WHEN nxt IS NULL THEN {_CANCELLED} ELSE {_ACTIVE} END"
        f" WHEN {lapse} <= age_us AND (nxt_us IS NULL OR {lapse} < nxt_us) AND (c_us IS NULL OR {lapse} < c_us)"
        f"   THEN CASE WHEN nxt IS NULL THEN {_LAPSED} ELSE {_ACTIVE} END"
        f" WHEN {risk} < {lapse} AND {risk} <= age_us AND (nxt_us IS NULL OR {risk} < nxt_us)"
        f"   AND (c_us IS NULL OR {risk} < c_us) THEN CASE WHEN nxt IS NULL THEN {_AT_RISK} ELSE {_ACTIVE} END"
        " ELSE 0 END"
    )


def _status(last: str) -> str:
    """The status from the code of the latest segment with an event (i * 8 + code); without one, the
    acquisition's (a cancellation before the first order is reactivated by it)."""
    by_code = " ".join(f"WHEN {code} THEN '{status}'" for code, status in CODE_STATUS.items())
    return (f"CASE WHEN {last} IS NOT NULL THEN CASE {last} %% 8 {by_code} END"
            " WHEN has_orders THEN 'active'"
            " WHEN cu.acquired_at IS NULL THEN 'prospect'"
            " WHEN c0.c <= %(now)s THEN 'cancelled' ELSE 'active' END")


def _statement(policies: list[PolicyParams]) -> str:
    pg = is_postgresql()
    model = any(p.model_rule for p in policies)
    if not model:
        x = "0"
    elif pg:
        x = MODEL_RULE_PARTS["repeat_days"]
    else:
        x = f"dense_rank() OVER (PARTITION BY o.customer_id ORDER BY {_purchase_day('o.ordered_at')}) - 1"
    first_instant = ("CASE WHEN cu.acquired_at IS NULL THEN f.t1 WHEN f.t1 IS NULL THEN cu.acquired_at"
                     " WHEN cu.acquired_at < f.t1 THEN cu.acquired_at ELSE f.t1 END")
    thresholds = [_thresholds(p, f"p{n}_") for n, p in enumerate(policies)]
    threshold_columns = ", ".join(f"{lapse} AS lapse{n}, {risk} AS risk{n}"
                                  for n, (lapse, risk) in enumerate(thresholds))
    code_columns = ", ".join(f"{_segment_code(f'lapse{n}', f'risk{n}')} AS code{n}" for n in range(len(policies)))
    last_columns = ", ".join(f"max(CASE WHEN code{n} > 0 THEN i * 8 + code{n} END) AS last{n}"
                             for n in range(len(policies)))
    status_columns = ", ".join(f"{_status(f'l.last{n}')} AS status{n}" for n in range(len(policies)))
    counts = ", ".join(f"sum(CASE WHEN status{n} = '{s}' THEN 1 ELSE 0 END)"
                       for n in range(len(policies)) for s in STATUSES)
    template = """
WITH ord AS (
    SELECT o.customer_id, o.ordered_at AS t,
           row_number() OVER w AS i,
           first_value(o.ordered_at) OVER w AS t1,
           lead(o.ordered_at) OVER w AS nxt,
           {x} AS x
    FROM {order} o
    WINDOW w AS (PARTITION BY o.customer_id ORDER BY o.ordered_at)
),
canc AS (
    -- A cancellation falls in the segment of the last order at or before it (segment 0: before any).
    SELECT k.customer_id,
           (SELECT count(*) FROM {order} o2
             WHERE o2.customer_id = k.customer_id AND o2.ordered_at <= k.cancelled_at) AS seg,
           min(k.cancelled_at) AS c
    FROM {cancellation} k
    JOIN {customer} cu ON cu.id = k.customer_id
    LEFT JOIN (SELECT o3.customer_id, min(o3.ordered_at) AS t1 FROM {order} o3
                WHERE o3.customer_id IN (SELECT customer_id FROM {cancellation}) GROUP BY o3.customer_id) f
           ON f.customer_id = k.customer_id
    WHERE k.cancelled_at >= {first_instant}
    GROUP BY 1, 2
),
seg AS (
    -- The segments opened by now: a later one (an order dated ahead) has no event by now.
    SELECT ord.customer_id, ord.i, ord.x, ord.nxt, canc.c,
           {span_us} AS span_us,
           {age_us} AS age_us,
           {nxt_us} AS nxt_us,
           {c_us} AS c_us
    FROM ord
    LEFT JOIN canc ON canc.customer_id = ord.customer_id AND canc.seg = ord.i
    WHERE ord.t <= %(now)s
),
thr AS (
    SELECT seg.*, {threshold_columns} FROM seg
),
code AS (
    SELECT customer_id, i, {code_columns} FROM thr
),
latest AS (
    SELECT customer_id, {last_columns} FROM code GROUP BY customer_id
),
st AS (
    SELECT {status_columns}
    FROM (SELECT cu.id, cu.acquired_at,
                 EXISTS (SELECT 1 FROM {order} o WHERE o.customer_id = cu.id) AS has_orders
          FROM {customer} cu) cu
    LEFT JOIN latest l ON l.customer_id = cu.id
    LEFT JOIN canc c0 ON c0.customer_id = cu.id AND c0.seg = 0
)
SELECT count(*), {counts} FROM st
"""
    # Every part is a fragment this module generates (never a value: those are bound parameters).
    return render(template, order=Order, cancellation=Cancellation, customer=Customer, x=x,
                  first_instant=first_instant, span_us=_span_us("ord.t", "ord.t1"),
                  age_us=_span_us("%(now)s", "ord.t"), nxt_us=_span_us("ord.nxt", "ord.t"),
                  c_us=_span_us("canc.c", "ord.t"), threshold_columns=threshold_columns,
                  code_columns=code_columns, last_columns=last_columns, status_columns=status_columns,
                  counts=counts)


def _params(policies: list[PolicyParams], now: dt.datetime) -> dict[str, Any]:
    adapt = connection.ops.adapt_datetimefield_value
    params: dict[str, Any] = {"now": adapt(now), "tz": policies[0].tz, "conn_tz": connection.timezone_name}
    for n, p in enumerate(policies):
        params.update({f"p{n}_{key}": value for key, value in p.__dict__.items()})
    return params


def lifecycle_status_counts(*, policies: list[PolicyParams], now: dt.datetime) -> tuple[int, list[StatusCounts]]:
    """Every customer, and how many of them each policy puts in each status at ``now``: one read-only query."""
    statement, params = _statement(policies), _params(policies, now)
    pg = is_postgresql()
    with transaction.atomic(), connection.cursor() as cursor:
        if pg:
            cursor.execute("SELECT current_setting('statement_timeout')")
            previous = cursor.fetchone()[0]
            cursor.execute("SELECT set_config('statement_timeout', %s, true)", [str(PREVIEW_TIMEOUT_MS)])
        try:
            cursor.execute(statement, params)
        except DatabaseError as exc:
            if pg and getattr(exc.__cause__, "sqlstate", None) == "57014":  # query_canceled
                raise PolicyPreviewTooSlow from exc
            raise
        row = cursor.fetchone()
        if pg:  # the rest of an enclosing transaction keeps its own limit
            cursor.execute("SELECT set_config('statement_timeout', %s, true)", [previous])
    total, values = int(row[0]), [int(v or 0) for v in row[1:]]
    width = len(STATUSES)
    return total, [StatusCounts(**dict(zip(STATUSES, values[n * width:(n + 1) * width], strict=True)))
                   for n in range(len(policies))]


def policy_preview(*, values: dict[str, Any], now: dt.datetime | None = None) -> PolicyPreview:
    """What a policy with ``values`` (a valid form's cleaned data) would change, against the policy in use."""
    now = now or timezone.now()
    current = policy_current()
    proposed = DormancyPolicy(**{f: values.get(f, getattr(current, f)) for f in POLICY_FIELDS})
    changed = tuple(f for f in POLICY_FIELDS if getattr(proposed, f) != getattr(current, f))
    total, (now_counts, new_counts) = lifecycle_status_counts(
        policies=[policy_params(current), policy_params(proposed)], now=now)
    return PolicyPreview(at=now, customers=total, current_version=current.pk, current=now_counts,
                         proposed=new_counts, changed_fields=changed)


def policy_rebuild_customers() -> int:
    """How many customers saving a policy rebuilds: every one (a new version makes the next scan a full one)."""
    return Customer.objects.count()
