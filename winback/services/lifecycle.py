"""The lifecycle engine: events, statuses and win-back cases from the order history (docs/metrics.md s.1).

A scan works on batches of customers, each in one transaction: compute every event of the batch (one SQL
statement on PostgreSQL, lifecycle_rules in Python elsewhere) into a temporary table, then make the stored
events equal to it (insert what is new, delete what no longer holds, e.g. after a backfill or a policy
change), move the customers' status, link redeemed coupons, close the cases of customers who came back
and open one case per current lapse. A batch locks its customers' rows first (PostgreSQL), so batches of
different customers run side by side on the workers while two batches covering one customer take turns; the
unique constraints make a duplicate event or case impossible whatever happens.

A scan is a batch run (core/batches.py): its parts are the batches, on the workers or in one process
(``inline``), and its finish refreshes the complaints' recovery flags, records the scan and sends
lifecycle_scanned. A batch run twice changes nothing: it makes the stored events equal to the history.

A full scan covers every customer (a backfill, or a rebuild after a policy change). An incremental scan
covers only customers whose history changed since they were computed (history_version differs from
lifecycle_version) or whose next crossing has come due (lifecycle_due_at <= now).
"""

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from django.utils.translation import gettext_noop

from core.batches import BatchKind, batch_kind_register, batch_run_start, batch_run_wait
from core.dialect import id_list_param, is_postgresql
from core.models import BatchRun
from crm.models import Cancellation, Customer, Order
from crm.services.customers import customers_set_lifecycle
from winback.models import LifecycleScanState
from winback.services.cases import (
    cases_close_reactivated, cases_open_for_lapses, cases_refresh_recovery, cases_void_gone,
)
from winback.services.lifecycle_rules import lifecycle_compute
from winback.services.policy import PolicyParams, policy_current, policy_params
from winback.signals import lifecycle_scanned
from winback.sql import (
    COUPONS_REDEEM, DROP_TEMP_TABLES, DUE_FROM_RAW, DUE_UPDATE_PYTHON, EVENTS_FROM_RAW, EVENTS_INSERT_PYTHON,
    EVENTS_STORE, FULL_SCAN_BOUNDS, GONE_DELETE, GONE_EARLIEST, LAST_EVENT, NEW_EARLIEST, STATUS_FROM_LAST_EVENT,
    TEMP_TABLES_POSTGRESQL, TEMP_TABLES_SQLITE, BatchStatements, statements,
)

SCAN_KIND = "lifecycle_scan"


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

    def statements(self, *, model_rule: bool = False) -> BatchStatements:
        return statements(by_ids=bool(self.ids), model_rule=model_rule)

    def params(self) -> dict[str, Any]:
        return {"ids": id_list_param(self.ids)} if self.ids else {"lo": self.lo, "hi": self.hi}

    def as_params(self) -> dict[str, Any]:
        """A batch run part's parameters (JSON)."""
        return {"ids": list(self.ids)} if self.ids else {"lo": self.lo, "hi": self.hi}

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "Scope":
        return cls(ids=tuple(params["ids"])) if params.get("ids") else cls(lo=params["lo"], hi=params["hi"])


def lifecycle_scan(
    *, full: bool = False, now: dt.datetime | None = None, batch_size: int = 50_000, progress: bool = False,
    inline: bool = True, user=None,
) -> ScanResult:
    """Scan and wait for the result: in this process (``inline``), or on the workers (the command's default)."""
    run = lifecycle_scan_start(full=full, now=now, batch_size=batch_size, inline=inline, progress=progress, user=user)
    if not inline:
        run = batch_run_wait(run=run, progress=progress)
    return scan_result_of(run=run)


def lifecycle_scan_start(
    *, full: bool = False, now: dt.datetime | None = None, batch_size: int = 50_000, inline: bool = False,
    progress: bool = False, user=None,
) -> BatchRun:
    """Start a scan as a batch run (core/batches.py): one part per batch of customers, then the finish
    (complaints' recovery flags, the scan state, the lifecycle_scanned signal). A full scan is due when asked,
    or when the events were built with another policy; while a full scan of this policy runs on the workers,
    asking for another returns it instead of scanning everything twice."""
    now = now or timezone.now()
    params = policy_params(policy_current())
    state, _ = LifecycleScanState.objects.get_or_create(pk=1)
    full = full or state.built_with_policy != params.version
    if full and not inline:
        running = _full_run_in_progress(params.version)
        if running is not None:
            return running
    scopes = list(_full_scopes(batch_size) if full else _incremental_scopes(now, batch_size))
    label = gettext_noop("full lifecycle scan") if full else gettext_noop("incremental lifecycle scan")
    return batch_run_start(
        kind=SCAN_KIND, parts=[scope.as_params() for scope in scopes], label=label, inline=inline,
        progress=progress, user=user,
        params={"full": full, "now": now.isoformat(), "policy_version": params.version},
    )


def _full_run_in_progress(policy_version: int) -> BatchRun | None:
    return (BatchRun.objects.filter(kind=SCAN_KIND, inline=False, params__full=True,
                                    params__policy_version=policy_version,
                                    status__in=[BatchRun.Status.RUNNING, BatchRun.Status.FINISHING])
            .order_by("-created_at").first())


def scan_result_of(*, run: BatchRun) -> ScanResult:
    result = ScanResult(full=run.params["full"], policy_version=run.params["policy_version"])
    for part in run.parts.order_by("index").values_list("result", flat=True):
        result.add(_from_json(part or {}))
    end = run.finished_at or timezone.now()
    result.seconds = (end - run.created_at).total_seconds()
    return result


def _scan_part(*, run: BatchRun, params: dict[str, Any]) -> dict[str, Any]:
    scope = Scope.from_params(params)
    policy = policy_params(policy_current())
    counts = _scan_batch(scope=scope, p=policy, now=parse_datetime(run.params["now"]))
    return _to_json(counts)


def _scan_finish(*, run: BatchRun, results: list[dict[str, Any]]) -> dict[str, Any]:
    now, full = parse_datetime(run.params["now"]), run.params["full"]
    state = LifecycleScanState.objects.select_for_update().get(pk=1)
    # Complaints that changed since the previous scan started (with a margin for slow commits).
    cases_refresh_recovery(now=now, since=state.last_scan_at - dt.timedelta(minutes=10) if state.last_scan_at else None)
    if state.last_scan_at is None or state.last_scan_at < now:
        state.last_scan_at = now
    if full:
        state.built_with_policy, state.last_full_at = run.params["policy_version"], now
    state.save()
    total = ScanResult(full=full, policy_version=run.params["policy_version"])
    for part in results:
        total.add(_from_json(part))
    earliest = total.earliest_change
    transaction.on_commit(lambda: lifecycle_scanned.send(sender=LifecycleScanState, full=full, since=earliest))
    return {"summary": total.summary()}


def _to_json(counts: dict[str, Any]) -> dict[str, Any]:
    change = counts.get("earliest_change")
    return {**counts, "earliest_change": change.isoformat() if change is not None else None}


def _from_json(counts: dict[str, Any]) -> dict[str, Any]:
    change = counts.get("earliest_change")
    return {**counts, "earliest_change": parse_datetime(change) if change else None}


def lifecycle_batches_register() -> None:
    """The scan's batches, for the workers (winback's AppConfig.ready)."""
    batch_kind_register(BatchKind(name=SCAN_KIND, run_part=_scan_part, finish=_scan_finish, keep_days=90))


def _full_scopes(batch_size: int) -> Iterator[Scope]:
    with connection.cursor() as cursor:
        cursor.execute(FULL_SCAN_BOUNDS, [batch_size])
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
    pg = is_postgresql()
    named = scope.statements(model_rule=p.model_rule)
    adapt = connection.ops.adapt_datetimefield_value
    q: dict[str, Any] = {**scope.params(), "now": adapt(now)}
    counts: dict[str, int] = {}
    with connection.cursor() as cur:
        if pg:
            cur.execute("SET LOCAL work_mem = '256MB'")  # the batch's orders sort and hash in memory
            cur.execute("SET LOCAL jit = off")  # compiling costs more than it saves on these statements
        _create_temp_tables(cur, pg)
        # Versions before orders: a change that lands in between is computed but not marked as done.
        cur.execute(named.customers_locking if pg else named.customers, q)
        counts["customers"] = cur.rowcount
        if pg:
            cur.execute(named.raw_events, {**q, **p.__dict__})
            cur.execute(EVENTS_FROM_RAW)
            cur.execute(DUE_FROM_RAW)
            cur.execute("ANALYZE lc_customers; ANALYZE lc_events")
        else:
            _compute_in_python(cur, scope=scope, p=p, now=now)
        cur.execute(LAST_EVENT)
        cur.execute(STATUS_FROM_LAST_EVENT)
        counts.update(_sync_events(cur, q, scope))
        customers_set_lifecycle(cursor=cur, source="lc_customers", ids=list(scope.ids) if scope.ids else None,
                                lo=scope.lo, hi=scope.hi)
        counts.update(_sync_cases(cur, q, p))
        for statement in DROP_TEMP_TABLES[pg]:
            cur.execute(statement)
    return counts


def _create_temp_tables(cur, pg: bool) -> None:
    for statement in (TEMP_TABLES_POSTGRESQL,) if pg else TEMP_TABLES_SQLITE:
        cur.execute(statement)


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
    cur.executemany(EVENTS_INSERT_PYTHON, rows)
    cur.executemany(DUE_UPDATE_PYTHON, dues)


def _sync_events(cur, q: dict[str, Any], scope: Scope) -> dict[str, int]:
    counts: dict[str, int] = {}
    # Events that no longer hold (a backfilled order, a policy change): their open cases become void.
    named = scope.statements()
    cur.execute(named.gone, q)
    counts["cases_voided"] = cases_void_gone(cur=cur, params=q)
    if scope.ids:  # an incremental batch: note how far back the events changed (a full scan changes everything)
        cur.execute(GONE_EARLIEST)
        gone = _as_datetime(cur.fetchone()[0])
        cur.execute(NEW_EARLIEST)
        new = _as_datetime(cur.fetchone()[0])
        changed = [x for x in (gone, new) if x is not None]
        counts["earliest_change"] = min(changed) if changed else None
    cur.execute(GONE_DELETE)
    counts["events_removed"] = cur.rowcount
    cur.execute("DROP TABLE lc_gone")
    cur.execute(EVENTS_STORE, q)
    counts["events_added"] = cur.rowcount
    cur.execute(named.status_changes, q)
    counts["statuses_changed"] = cur.fetchone()[0]
    return counts


def _as_datetime(value) -> dt.datetime | None:
    """A timestamp as the raw cursor returns it (SQLite gives text) as an aware datetime."""
    if value is None or isinstance(value, dt.datetime):
        return value if value is None or value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    parsed = parse_datetime(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def _sync_cases(cur, q: dict[str, Any], p: PolicyParams) -> dict[str, int]:
    counts: dict[str, int] = {}
    cur.execute(COUPONS_REDEEM)
    counts["coupons_redeemed"] = cur.rowcount
    counts["cases_closed"] = cases_close_reactivated(cur=cur, params=q, window_days=p.window_days)
    counts["cases_opened"] = cases_open_for_lapses(cur=cur, params=q, holdout_share=p.holdout_share)
    return counts
