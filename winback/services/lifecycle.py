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
from crm.services.customers import customers_set_lifecycle
from winback.models import LifecycleScanState
from winback.services.cases import (
    cases_close_reactivated, cases_open_for_lapses, cases_refresh_recovery, cases_void_gone,
)
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
        cases_refresh_recovery(now=now, since=state.last_scan_at - dt.timedelta(minutes=10) if state.last_scan_at else None)
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
            cases_refresh_recovery(now=now, customer_ids=list(scope.ids))
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
        customers_set_lifecycle(cursor=cur, source="lc_customers", ids=list(scope.ids) if scope.ids else None,
                                lo=scope.lo, hi=scope.hi)
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
    counts["cases_voided"] = cases_void_gone(cur=cur, params=q)
    if scope.ids:  # an incremental batch: note how far back the events changed (a full scan changes everything)
        cur.execute("SELECT min(occurred_at) FROM winback_lifecycleevent WHERE id IN (SELECT id FROM lc_gone)")
        gone = _as_datetime(cur.fetchone()[0])
        cur.execute("""SELECT min(n.occurred_at) FROM lc_events n WHERE NOT EXISTS (
                           SELECT 1 FROM winback_lifecycleevent e
                           WHERE e.customer_id = n.customer_id AND e.kind = n.kind AND e.occurred_at = n.occurred_at)""")
        new = _as_datetime(cur.fetchone()[0])
        changed = [x for x in (gone, new) if x is not None]
        counts["earliest_change"] = min(changed) if changed else None
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
    counts["cases_closed"] = cases_close_reactivated(cur=cur, params=q, window_days=p.window_days)
    counts["cases_opened"] = cases_open_for_lapses(cur=cur, params=q, holdout_share=p.holdout_share)
    return counts
