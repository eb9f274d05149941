"""Snapshots: every figure for every month, stored so pages and series read them instead of recomputing.

A refresh is planned (the months; the customers split into parts, plus a part for the order lines and one for
the program's tables), its parts computed (each the sums of metrics/services/monthly.py over its customers, or
the program's counts and tables: no writes, so a part may run twice or beside the others on another worker)
and finished: the parts' results combined into the figures, whose periods' rows are then replaced in one
transaction. A period is either entirely the old figures or entirely
the new ones, and running it again replaces rather than adds. metrics_refresh does all of it in this process;
metrics_refresh_start runs the parts as a batch run (core.batches) on the workers, or inline.
"""

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from core.batches import BatchKind, batch_kind_register, batch_run_start
from core.db import transaction_lock
from core.models import BatchRun
from metrics.models import MetricSnapshot
from metrics.services.cohorts import cohort_sizes
from metrics.services.monthly import (
    CUSTOMER_SUMS, LINE_SUMS, PROGRAM_SUMS, month_index, months_figures, months_from_json, months_part_compute, months_parts_combine,
)
from metrics.services.program import AGENT_TABLE, REASON_COUNTS
from metrics.services.periods import Period, add_months, month_of, months_between
from metrics.sql import CUSTOMER_CUTS, CUSTOMER_WEIGHT

DEFAULT_MONTHS = 36
DEFAULT_PARTS = 4  # a run's parts of customers on the workers (with one of order lines and one of the program's)
REFRESH_KIND = "metrics_refresh"  # the core.batches kind


def _decimal(x: float | None):
    return None if x is None else round(x, 6)


SNAPSHOT_LOCK_KEY = 7_366_022  # next to winback's lifecycle scan lock (7_366_021)


def customer_ranges(*, parts: int) -> list[tuple[int | None, int | None]]:
    """The customers split into ``parts`` ranges lo <= id < hi of about as much work each (their orders, plus
    one each), None for unbounded: a customer created after the plan still falls in the last."""
    with connection.cursor() as cur:
        cur.execute(CUSTOMER_WEIGHT)
        count, total = cur.fetchone()
        if parts <= 1 or count < parts:
            return [(None, None)]
        cur.execute(CUSTOMER_CUTS, {"parts": parts, "total": total})
        cuts = [int(first_id) for bucket, first_id in cur.fetchall() if int(bucket) > 0]
    bounds: list[int | None] = [None, *cuts, None]
    return list(zip(bounds, bounds[1:], strict=False))


def refresh_plan(*, periods: Iterable[Period], parts: int = 1) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the run's params, each part's params) of a refresh of ``periods`` (calendar months) and of the cohort
    matrix up to them: the months, the cohorts' range and the day the plan was made are the run's, so
    that every part and the finish agree on them; a part's are its customers and what it sums. With
    ``parts`` > 1 the customers are split into that many parts, and the order lines of every customer
    (monthly.LINE_SUMS) and the program's tables (PROGRAM_SUMS) are a part each besides."""
    months = sorted(set(periods))
    if not months:
        raise ValueError("A refresh needs at least one month.")
    if not all(p.is_month() for p in months):
        raise ValueError("Snapshots are monthly: every period of a refresh must be a calendar month.")
    this_month = timezone.localdate().replace(day=1)
    first_cohort = add_months(months[0].start, -(DEFAULT_MONTHS - 1))
    last_boundary = min(add_months(months[-1].start, 1), this_month)
    params = {"months": [p.start.isoformat() for p in months], "first_cohort": first_cohort.isoformat(),
              "last_boundary": max(last_boundary, first_cohort).isoformat(),
              "cohort_end": add_months(months[-1].start, 1).isoformat(), "delete_boundary": last_boundary.isoformat()}
    if parts <= 1:
        return params, [{"lo": None, "hi": None, "sums": [CUSTOMER_SUMS, LINE_SUMS, PROGRAM_SUMS]}]
    return params, [*({"lo": lo, "hi": hi, "sums": [CUSTOMER_SUMS]} for lo, hi in customer_ranges(parts=parts)),
                    {"lo": None, "hi": None, "sums": [LINE_SUMS]}, {"lo": None, "hi": None, "sums": [PROGRAM_SUMS]}]


def refresh_part_compute(*, run_params: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
    """One part's sums (JSON); it writes nothing."""
    return months_part_compute(
        months=months_from_json(run_params["months"]), customers=(part["lo"], part["hi"]), sums=tuple(part["sums"]),
        cohorts=(dt.date.fromisoformat(run_params["first_cohort"]), dt.date.fromisoformat(run_params["last_boundary"])))


def refresh_write(*, run_params: dict[str, Any], results: list[dict[str, Any]]) -> int:
    """The finish: the figures from the parts' sums, and the periods' rows replaced; returns the rows written."""
    periods = months_from_json(run_params["months"])
    first_cohort = dt.date.fromisoformat(run_params["first_cohort"])
    last_boundary = dt.date.fromisoformat(run_params["delete_boundary"])
    combined = months_parts_combine(results)
    computed = months_figures(months=periods, combined=combined)
    cohort_cells = combined["cohort_cells"]
    sizes = cohort_sizes(first=first_cohort, end=dt.date.fromisoformat(run_params["cohort_end"]))
    now = timezone.now()
    rows = [
        MetricSnapshot(metric=name, start=p.start, end=p.end, value=_decimal(f.value), numerator=_decimal(f.numerator),
                       denominator=_decimal(f.denominator), extra=f.extra, computed_at=now)
        for p, figures in computed.items() for name, f in figures.items()
    ]
    # The cohort matrix: (cohort month, boundary month) cells, and each cohort's size.
    rows += [MetricSnapshot(metric="cohort_active", start=c, end=b, value=n, computed_at=now)
             for (c, b), n in sorted(cohort_cells.items())]
    cohort_months = sorted({c for c, _ in cohort_cells} | set(sizes))
    rows += [MetricSnapshot(metric="cohort_size", start=c, end=add_months(c, 1), value=sizes.get(c, 0), computed_at=now)
             for c in cohort_months]
    # The KPI page's program tables (the program part's), so the page reads a month instead of grouping calls.
    for p in periods:
        tables = combined["program"][str(month_index(p.start))]
        rows.append(MetricSnapshot(metric=AGENT_TABLE, start=p.start, end=p.end, computed_at=now,
                                   extra={"rows": tables["agent_table"]}))
        rows.append(MetricSnapshot(metric=REASON_COUNTS, start=p.start, end=p.end, computed_at=now,
                                   extra={"counts": tables["reason_counts"]}))
    with transaction.atomic():
        # Two refreshes of overlapping periods (a scan's and the nightly one) would each delete, then both
        # insert the same keys: the second waits here and replaces the first's rows instead.
        transaction_lock(SNAPSHOT_LOCK_KEY)
        for p in periods:
            MetricSnapshot.objects.filter(start=p.start, end=p.end).delete()
        # Only the cells recomputed now: later boundaries of these cohorts keep their figures.
        MetricSnapshot.objects.filter(metric="cohort_active", start__gte=first_cohort, end__lte=last_boundary).delete()
        MetricSnapshot.objects.filter(metric="cohort_size", start__in=cohort_months).delete()
        MetricSnapshot.objects.bulk_create(rows, batch_size=1000)
    return len(rows)


def metrics_refresh(*, periods: Iterable[Period], parts: int = 1) -> int:
    """Recompute and store the months (and the cohort matrix up to them) in this process; returns the rows
    written. ``parts`` splits the customers as a batch run would (the figures are the same)."""
    periods = sorted(set(periods))
    if not periods:
        return 0
    run_params, part_params = refresh_plan(periods=periods, parts=parts)
    results = [refresh_part_compute(run_params=run_params, part=part) for part in part_params]
    return refresh_write(run_params=run_params, results=results)


def _run_part(*, run: BatchRun, params: dict[str, Any]) -> dict[str, Any]:
    return refresh_part_compute(run_params=run.params, part=params)


def _finish(*, run: BatchRun, results: list[dict[str, Any]]) -> dict[str, Any]:
    return {"rows": refresh_write(run_params=run.params, results=results), "months": len(run.params["months"])}


def refresh_batches_register() -> None:
    """A refresh's batches, for the workers (metrics' AppConfig.ready)."""
    batch_kind_register(BatchKind(name=REFRESH_KIND, run_part=_run_part, finish=_finish, keep_days=90))


def metrics_refresh_start(*, periods: Iterable[Period], parts: int = DEFAULT_PARTS, inline: bool = False,
                          user=None, label: str = "", progress: bool = False):
    """A refresh as a batch run: its parts on the workers (or, ``inline``, in this process), then the
    finish; returns the run (core.batches.batch_run_wait waits for it)."""
    periods = sorted(set(periods))
    run_params, part_params = refresh_plan(periods=periods, parts=parts)
    return batch_run_start(kind=REFRESH_KIND, parts=part_params, params=run_params, inline=inline, user=user,
                           label=label or f"KPI snapshots: {len(periods)} months, {periods[0]} .. {periods[-1]}",
                           progress=progress)


def recent_months(*, months: int = DEFAULT_MONTHS, today: dt.date | None = None) -> list[Period]:
    """The current month and the ``months - 1`` before it."""
    today = today or timezone.localdate()
    first = add_months(today.replace(day=1), -(months - 1))
    return months_between(first, add_months(today.replace(day=1), 1))


def month_periods_touching(*, since: dt.datetime) -> list[Period]:
    """The months from the one containing ``since`` to the current one (what a backfill changed)."""
    return months_between(month_of(timezone.localtime(since).date()).start, add_months(timezone.localdate().replace(day=1), 1))
