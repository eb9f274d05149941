"""The lifecycle engine: events, statuses and win-back cases from the order history (docs/metrics.md s.1).

A scan works on batches of customers, each in one transaction: compute every event of the batch (one SQL
statement on PostgreSQL, lifecycle_rules in Python elsewhere) into a temporary table, then make the stored
events equal to it (insert what is new, delete what no longer holds, e.g. after a backfill or a policy
change), move the customers' status, link redeemed coupons, close the cases of customers who came back
and open one case per current lapse. Scans are serialised by an advisory lock on PostgreSQL; the unique
constraints make a duplicate event or case impossible whatever happens.

A full scan covers every customer (a backfill, or a rebuild after a policy change). An incremental scan
covers only customers whose history changed since they were computed (history_version differs from
lifecycle_version) or whose next crossing has come due (lifecycle_due_at <= now).
"""

import datetime as dt
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from tqdm import tqdm

from core.db import transaction_lock
from crm.models import Cancellation, Customer, Order
from winback.models import LifecycleScanState
from winback.services.lifecycle_rules import PRECEDENCE, lifecycle_compute
from winback.services.lifecycle_sql import EVENTS_SQL
from winback.services.policy import PolicyParams, policy_current, policy_params
from winback.signals import lifecycle_scanned

LOCK_KEY = 7_366_021  # pg advisory lock: one lifecycle batch at a time
STATUS_SQL = "CASE last_kind WHEN 'acquired' THEN 'active' WHEN 'reactivated' THEN 'active' WHEN 'at_risk' THEN 'at_risk' WHEN 'lapsed' THEN 'lapsed' WHEN 'cancelled' THEN 'cancelled' ELSE 'prospect' END"
PRECEDENCE_SQL = "CASE kind " + " ".join(f"WHEN '{k}' THEN {v}" for k, v in PRECEDENCE.items()) + " END"


@dataclass
class ScanResult:
    full: bool
    customers: int = 0
    events_added: int = 0
    events_removed: int = 0
    statuses_changed: int = 0
    cases_opened: int = 0
    cases_closed: int = 0
    cases_voided: int = 0
    coupons_redeemed: int = 0
    seconds: float = 0.0
    policy_version: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    # The earliest instant whose events changed (incremental scans): what a backfill touched.
    earliest_change: dt.datetime | None = None

    def add(self, other: dict[str, Any]) -> None:
        for key, value in other.items():
            if key == "earliest_change":
                if value is not None:
                    self.earliest_change = value if self.earliest_change is None else min(self.earliest_change, value)
            else:
                setattr(self, key, getattr(self, key) + value)

    def summary(self) -> str:
        return (
            f"{'full' if self.full else 'incremental'} lifecycle scan (policy v{self.policy_version}): "
            f"{self.customers} customers, +{self.events_added}/-{self.events_removed} events, "
            f"{self.statuses_changed} statuses changed, cases +{self.cases_opened} opened, {self.cases_closed} closed, "
            f"{self.cases_voided} voided, {self.coupons_redeemed} coupons redeemed, in {self.seconds:.1f}s"
        )


@dataclass(frozen=True)
class Scope:
    """Which customers a batch covers: an id range (full scans) or a list of ids (incremental ones)."""

    lo: int | None = None
    hi: int | None = None
    ids: tuple[int, ...] = ()

    def sql(self, column: str) -> str:
        if self.ids:
            return f"{column} = ANY(%(ids)s)" if connection.vendor == "postgresql" else f"{column} IN ({','.join(map(str, self.ids))})"
        return f"{column} BETWEEN %(lo)s AND %(hi)s"

    def params(self) -> dict[str, Any]:
        return {"ids": list(self.ids)} if self.ids else {"lo": self.lo, "hi": self.hi}


def lifecycle_scan(
    *, full: bool = False, now: dt.datetime | None = None, batch_size: int = 50_000, progress: bool = False
) -> ScanResult:
    started = time.perf_counter()
    now = now or timezone.now()
    params = policy_params(policy_current())
    state, _ = LifecycleScanState.objects.get_or_create(pk=1)
    full = full or state.built_with_policy != params.version
    result = ScanResult(full=full, policy_version=params.version)
    scopes = list(_full_scopes(batch_size) if full else _incremental_scopes(now, batch_size))
    for scope in tqdm(scopes, desc="lifecycle", unit="batch", disable=not progress):
        with transaction.atomic():
            result.add(_scan_batch(scope=scope, p=params, now=now))
    with transaction.atomic():
        # Complaints that changed since the previous scan started (with a margin for slow commits).
        _refresh_open_cases(since=state.last_scan_at - dt.timedelta(minutes=10) if state.last_scan_at else None)
        state = LifecycleScanState.objects.select_for_update().get(pk=1)
        state.last_scan_at = now
        if full:
            state.built_with_policy, state.last_full_at = params.version, now
        state.save()
    result.seconds = time.perf_counter() - started
    lifecycle_scanned.send(sender=LifecycleScanState, full=full, since=result.earliest_change)
    return result


def _full_scopes(batch_size: int) -> Iterator[Scope]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM crm_customer) x"
            " WHERE (n - 1) %% %s = 0 ORDER BY id", [batch_size],
        )
        bounds = [r[0] for r in cursor.fetchall()]
    last = Customer.objects.order_by("-id").values_list("id", flat=True).first()
    for i, lo in enumerate(bounds):
        yield Scope(lo=lo, hi=bounds[i + 1] - 1 if i + 1 < len(bounds) else last)


def _incremental_scopes(now: dt.datetime, batch_size: int) -> Iterator[Scope]:
    stale = Customer.objects.exclude(history_version=F("lifecycle_version")).values_list("id", flat=True)
    due = Customer.objects.filter(lifecycle_due_at__lte=now).values_list("id", flat=True)
    ids = sorted(set(stale) | set(due))
    for i in range(0, len(ids), batch_size):
        yield Scope(ids=tuple(ids[i : i + batch_size]))


def lifecycle_refresh(*, customer_ids: list[int], now: dt.datetime | None = None) -> ScanResult:
    """Recompute a few customers at once (e.g. right after their orders arrive)."""
    now = now or timezone.now()
    params = policy_params(policy_current())
    result = ScanResult(full=False, policy_version=params.version)
    if customer_ids:
        with transaction.atomic():
            scope = Scope(ids=tuple(sorted(set(customer_ids))))
            result.add(_scan_batch(scope=scope, p=params, now=now))
            _refresh_open_cases(customer_ids=list(scope.ids))
        month_start = timezone.localtime(now).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        if result.earliest_change is not None and result.earliest_change < month_start:
            # Orders backdated into earlier months changed closed periods: their figures are refreshed.
            # (Changes in this month wait for the next scan's refresh, not one per order.)
            lifecycle_scanned.send(sender=LifecycleScanState, full=False, since=result.earliest_change)
    return result


# --- One batch ------------------------------------------------------------------------------------------

def _scan_batch(*, scope: Scope, p: PolicyParams, now: dt.datetime) -> dict[str, int]:
    pg = connection.vendor == "postgresql"
    adapt = connection.ops.adapt_datetimefield_value
    q: dict[str, Any] = {**scope.params(), "now": adapt(now)}
    counts: dict[str, int] = {}
    with connection.cursor() as cur:
        if pg:
            transaction_lock(LOCK_KEY)
            cur.execute("SET LOCAL work_mem = '256MB'")  # the batch's orders sort and hash in memory
            cur.execute("SET LOCAL jit = off")  # compiling costs more than it saves on these statements
        _create_temp_tables(cur, pg)
        # Versions before orders: a change that lands in between is computed but not marked as done.
        cur.execute(
            f"INSERT INTO lc_customers (customer_id, version) SELECT cu.id, cu.history_version"
            f" FROM crm_customer cu WHERE {scope.sql('cu.id')}", q,
        )
        counts["customers"] = cur.rowcount
        if pg:
            sql = EVENTS_SQL.format(order_scope=scope.sql("o.customer_id"), customer_scope=scope.sql("cu.id"))
            cur.execute(f"INSERT INTO lc_raw (customer_id, kind, occurred_at) {sql}", {**q, **p.__dict__})
            cur.execute("INSERT INTO lc_events SELECT customer_id, kind, occurred_at FROM lc_raw WHERE kind NOT LIKE 'due%%'")
            cur.execute(
                "UPDATE lc_customers SET due_at = d.due FROM (SELECT customer_id, min(occurred_at) AS due FROM lc_raw"
                " WHERE kind LIKE 'due%%' GROUP BY customer_id) d WHERE d.customer_id = lc_customers.customer_id"
            )
            cur.execute("ANALYZE lc_customers; ANALYZE lc_events")
        else:
            _compute_in_python(cur, scope=scope, p=p, now=now)
        cur.execute(f"""
            UPDATE lc_customers SET last_kind = x.kind, last_at = x.occurred_at
            FROM (SELECT customer_id, kind, occurred_at,
                         row_number() OVER (PARTITION BY customer_id ORDER BY occurred_at DESC, {PRECEDENCE_SQL} DESC) AS rn
                  FROM lc_events) x
            WHERE x.rn = 1 AND x.customer_id = lc_customers.customer_id""")
        cur.execute(f"UPDATE lc_customers SET status = {STATUS_SQL}")
        counts.update(_sync_events(cur, q, scope))
        distinct = "IS DISTINCT FROM" if pg else "IS NOT"  # null-safe "differs"
        cur.execute(f"""
            UPDATE crm_customer SET status = b.status, lifecycle_version = b.version, lifecycle_due_at = b.due_at
            FROM lc_customers b
            WHERE crm_customer.id = b.customer_id AND {scope.sql('crm_customer.id')}
              AND (crm_customer.status <> b.status OR crm_customer.lifecycle_version <> b.version
                   OR crm_customer.lifecycle_due_at {distinct} b.due_at)""", q)
        counts.update(_sync_cases(cur, q, p, pg, scope))
        for table in ("lc_customers", "lc_events", "lc_raw") if pg else ("lc_customers", "lc_events"):
            cur.execute(f"DROP TABLE {table}")
    return counts


def _create_temp_tables(cur, pg: bool) -> None:
    if pg:
        cur.execute("""
            CREATE TEMP TABLE lc_customers (customer_id bigint PRIMARY KEY, version integer NOT NULL,
                due_at timestamptz, status varchar(12), last_kind varchar(12), last_at timestamptz);
            CREATE TEMP TABLE lc_raw (customer_id bigint NOT NULL, kind varchar(16) NOT NULL, occurred_at timestamptz NOT NULL);
            CREATE TEMP TABLE lc_events (customer_id bigint NOT NULL, kind varchar(12) NOT NULL, occurred_at timestamptz NOT NULL);
        """)
    else:
        cur.execute("CREATE TEMP TABLE lc_customers (customer_id integer PRIMARY KEY, version integer NOT NULL,"
                    " due_at datetime, status text, last_kind text, last_at datetime)")
        cur.execute("CREATE TEMP TABLE lc_events (customer_id integer NOT NULL, kind text NOT NULL, occurred_at datetime NOT NULL)")


def _compute_in_python(cur, *, scope: Scope, p: PolicyParams, now: dt.datetime) -> None:
    """The portable path: read the batch's histories, apply lifecycle_rules, fill the same temp tables."""
    customers = Customer.objects.filter(id__in=scope.ids) if scope.ids else Customer.objects.filter(id__gte=scope.lo, id__lte=scope.hi)
    acquired = dict(customers.values_list("id", "acquired_at"))
    orders: dict[int, list[dt.datetime]] = defaultdict(list)
    for customer_id, at in Order.objects.filter(customer_id__in=acquired).order_by("customer_id", "ordered_at", "id").values_list("customer_id", "ordered_at"):
        orders[customer_id].append(at)
    cancellations: dict[int, list[dt.datetime]] = defaultdict(list)
    for customer_id, at in Cancellation.objects.filter(customer_id__in=acquired).order_by("customer_id", "cancelled_at").values_list("customer_id", "cancelled_at"):
        cancellations[customer_id].append(at)
    adapt = connection.ops.adapt_datetimefield_value
    rows, dues = [], []
    for customer_id, acquired_at in acquired.items():
        events, due = lifecycle_compute(
            orders=orders.get(customer_id, []), acquired_at=acquired_at,
            cancellations=cancellations.get(customer_id, []), policy=p, now=now,
        )
        rows += [(customer_id, kind, adapt(at)) for kind, at in events]
        if due is not None:
            dues.append((adapt(due), customer_id))
    cur.executemany("INSERT INTO lc_events (customer_id, kind, occurred_at) VALUES (%s, %s, %s)", rows)
    cur.executemany("UPDATE lc_customers SET due_at = %s WHERE customer_id = %s", dues)


def _sync_events(cur, q: dict[str, Any], scope: Scope) -> dict[str, int]:
    counts: dict[str, int] = {}
    # Events that no longer hold (a backfilled order, a policy change): their open cases become void.
    cur.execute(f"""
        CREATE TEMP TABLE lc_gone AS
        SELECT e.id FROM winback_lifecycleevent e JOIN lc_customers b ON b.customer_id = e.customer_id
        WHERE {scope.sql('e.customer_id')}
          AND NOT EXISTS (SELECT 1 FROM lc_events n
                          WHERE n.customer_id = e.customer_id AND n.kind = e.kind AND n.occurred_at = e.occurred_at)""", q)
    cur.execute("""
        UPDATE winback_winbackcase SET status = 'void', closed_at = %(now)s, updated_at = %(now)s,
            ready = false, claimed_by_id = NULL, lease_until = NULL, callback_at = NULL, next_call_at = NULL,
            close_reason = 'No longer lapsed: the history or the dormancy policy changed.'
        WHERE status = 'open' AND lapse_event_id IN (SELECT id FROM lc_gone)""", q)
    counts["cases_voided"] = cur.rowcount
    if scope.ids:  # an incremental batch: note how far back the events changed (a full scan changes everything)
        cur.execute("SELECT min(occurred_at) FROM winback_lifecycleevent WHERE id IN (SELECT id FROM lc_gone)")
        gone = _as_datetime(cur.fetchone()[0])
        cur.execute("""SELECT min(n.occurred_at) FROM lc_events n WHERE NOT EXISTS (
                           SELECT 1 FROM winback_lifecycleevent e
                           WHERE e.customer_id = n.customer_id AND e.kind = n.kind AND e.occurred_at = n.occurred_at)""")
        new = _as_datetime(cur.fetchone()[0])
        changed = [x for x in (gone, new) if x is not None]
        counts["earliest_change"] = min(changed) if changed else None
    cur.execute("UPDATE winback_winbackcase SET lapse_event_id = NULL WHERE lapse_event_id IN (SELECT id FROM lc_gone)")
    cur.execute("DELETE FROM winback_lifecycleevent WHERE id IN (SELECT id FROM lc_gone)")
    counts["events_removed"] = cur.rowcount
    cur.execute("DROP TABLE lc_gone")
    cur.execute("""
        INSERT INTO winback_lifecycleevent (customer_id, kind, occurred_at, created_at)
        SELECT customer_id, kind, occurred_at, %(now)s FROM lc_events WHERE true
        ON CONFLICT DO NOTHING""", q)
    counts["events_added"] = cur.rowcount
    cur.execute(f"SELECT count(*) FROM lc_customers b JOIN crm_customer c ON c.id = b.customer_id"
                f" WHERE {scope.sql('c.id')} AND c.status <> b.status", q)
    counts["statuses_changed"] = cur.fetchone()[0]
    return counts


def _as_datetime(value) -> dt.datetime | None:
    """A timestamp as the raw cursor returns it (SQLite gives text) as an aware datetime."""
    if value is None or isinstance(value, dt.datetime):
        return value if value is None or value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    parsed = parse_datetime(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def _minus_days(expr: str, days: int, pg: bool) -> str:
    days = int(days)
    return f"({expr} - interval '{days} days')" if pg else f"strftime('%%Y-%%m-%%d %%H:%%M:%%f', {expr}, '-{days} days')"


def _sync_cases(cur, q: dict[str, Any], p: PolicyParams, pg: bool, scope: Scope) -> dict[str, int]:
    counts: dict[str, int] = {}
    # An order that used a coupon of the customer redeems it (the earliest such order).
    cur.execute("""
        UPDATE winback_coupon SET redeemed_order_id = o.id, redeemed_at = o.ordered_at
        FROM crm_order o
        WHERE winback_coupon.redeemed_order_id IS NULL
          AND winback_coupon.customer_id IN (SELECT customer_id FROM lc_customers)
          AND o.id = (SELECT min(o2.id) FROM crm_order o2
                      WHERE o2.customer_id = winback_coupon.customer_id AND o2.coupon_code = winback_coupon.code)""")
    counts["coupons_redeemed"] = cur.rowcount
    # A reactivation closes the open case: won if a contact or coupon of the case falls inside the
    # attribution window before the order, else the customer returned on their own.
    window = _minus_days("r.at", p.window_days, pg)
    cur.execute(f"""
        UPDATE winback_winbackcase SET
            status = CASE WHEN EXISTS (
                        SELECT 1 FROM crm_contact ct
                        WHERE ct.customer_id = winback_winbackcase.customer_id AND ct.direction = 'outbound'
                          AND ct.occurred_at >= winback_winbackcase.lapsed_at AND ct.occurred_at <= r.at
                          AND ct.occurred_at >= {window})
                     OR EXISTS (
                        SELECT 1 FROM winback_coupon cp
                        WHERE cp.case_id = winback_winbackcase.id
                          AND (cp.redeemed_order_id = r.order_id OR (cp.issued_at <= r.at AND cp.issued_at >= {window})))
                     THEN 'won' ELSE 'returned' END,
            closed_at = r.at, reactivation_order_id = r.order_id, updated_at = %(now)s,
            ready = false, claimed_by_id = NULL, lease_until = NULL, callback_at = NULL, next_call_at = NULL,
            close_reason = 'Ordered again.'
        FROM (SELECT x.case_id, x.at,
                     (SELECT min(o.id) FROM crm_order o WHERE o.customer_id = x.customer_id AND o.ordered_at = x.at) AS order_id
              FROM (SELECT wc.id AS case_id, wc.customer_id, min(e.occurred_at) AS at
                    FROM winback_winbackcase wc
                    JOIN lc_customers b ON b.customer_id = wc.customer_id
                    JOIN winback_lifecycleevent e ON e.customer_id = wc.customer_id AND e.kind = 'reactivated'
                                                 AND e.occurred_at > wc.lapsed_at
                    -- (Not scoped by id list: with "= ANY(ids)" the planner chose a plan 30x slower at 1M
                    -- customers; the join to lc_customers already limits it to the batch.)
                    WHERE wc.status = 'open' AND wc.kind = 'winback'
                    GROUP BY wc.id, wc.customer_id) x) r
        WHERE winback_winbackcase.id = r.case_id""", q)
    counts["cases_closed"] = cur.rowcount
    # One case per current lapse (or cancellation); the holdout draw is stored and never changes.
    holdout = "random() < %(holdout)s" if pg else "(abs(random()) %% 1000000) < %(holdout)s * 1000000"
    year_before = _minus_days("e.occurred_at", 365, pg)
    cur.execute(f"""
        INSERT INTO winback_winbackcase (customer_id, kind, lapse_event_id, lapsed_at, opened_at, status, holdout, ready,
                                         attempts, awaiting_return, is_recovery, revenue_12m, priority, close_reason,
                                         created_at, updated_at)
        SELECT customer_id, 'winback', event_id, lapsed_at, %(now)s, 'open', holdout, NOT holdout, 0, false, recovery, revenue,
               revenue * CASE WHEN recovery THEN 2 ELSE 1 END, '', %(now)s, %(now)s
        FROM (SELECT lost.*, {holdout} AS holdout FROM (
            SELECT e.customer_id, e.id AS event_id, e.occurred_at AS lapsed_at,
                   EXISTS (SELECT 1 FROM crm_complaint k
                           WHERE k.customer_id = e.customer_id AND k.status <> 'resolved') AS recovery,
                   (SELECT COALESCE(sum(o.amount), 0) FROM crm_order o
                    WHERE o.customer_id = e.customer_id AND o.ordered_at > {year_before}
                      AND o.ordered_at <= e.occurred_at) AS revenue
            FROM lc_customers b
            JOIN winback_lifecycleevent e
              ON e.customer_id = b.customer_id AND e.kind = b.last_kind AND e.occurred_at = b.last_at
            WHERE b.status IN ('lapsed', 'cancelled')
        ) AS lost) AS drawn
        WHERE true
        -- A case already opened for this lapse (unique lapse_event) or an open case of the customer
        -- (one_open_case_per_customer) makes the row a no-op: the constraints decide, under any concurrency.
        ON CONFLICT DO NOTHING""", {**q, "holdout": p.holdout_share})
    counts["cases_opened"] = cur.rowcount
    return counts


def _refresh_open_cases(*, since: dt.datetime | None = None, customer_ids: list[int] | None = None) -> None:
    """Complaints open and close without touching the order history: keep recovery flags current.

    With ``since``, only customers with a complaint changed after it; with ``customer_ids``, only those
    (new cases get their flag when they open)."""
    where = ""
    params: list[Any] = []
    if since is not None:
        where = "AND customer_id IN (SELECT customer_id FROM crm_complaint WHERE updated_at >= %s)"
        params = [connection.ops.adapt_datetimefield_value(since)]
    elif customer_ids is not None:
        where = f"AND customer_id IN ({','.join(str(int(i)) for i in customer_ids) or 'NULL'})"
    with connection.cursor() as cur:
        cur.execute(f"""
            UPDATE winback_winbackcase SET
                is_recovery = NOT is_recovery,
                priority = revenue_12m * CASE WHEN is_recovery THEN 1 ELSE 2 END
            WHERE status = 'open' {where} AND is_recovery <> EXISTS (
                SELECT 1 FROM crm_complaint k WHERE k.customer_id = winback_winbackcase.customer_id AND k.status <> 'resolved')""",
            params)
