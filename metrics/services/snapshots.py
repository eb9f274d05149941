"""Snapshots: every figure for every month, stored so pages and series read them instead of recomputing.

A refresh computes the periods first, then replaces their rows in one transaction: a period is either
entirely the old figures or entirely the new ones, and running it again replaces rather than adds.
"""

import datetime as dt
from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from core.db import transaction_lock
from metrics.models import MetricSnapshot
from metrics.services.calculators import metrics_compute, state_changes
from metrics.services.cohorts import cohort_active_counts, cohort_sizes
from metrics.services.program import AGENT_TABLE, REASON_COUNTS, agent_table_compute, reason_counts
from metrics.services.periods import Period, add_months, month_of, months_between

DEFAULT_MONTHS = 36


def _decimal(x: float | None):
    return None if x is None else round(x, 6)


SNAPSHOT_LOCK_KEY = 7_366_022  # next to winback's lifecycle scan lock (7_366_021)


def metrics_refresh(*, periods: Iterable[Period]) -> int:
    """Recompute and store the periods (and the cohort matrix up to them); returns the rows written."""
    periods = sorted(set(periods))
    if not periods:
        return 0
    this_month = timezone.localdate().replace(day=1)
    first_cohort = add_months(periods[0].start.replace(day=1), -(DEFAULT_MONTHS - 1))
    last_boundary = min(add_months(periods[-1].start.replace(day=1), 1), this_month)
    with state_changes() as cur:
        computed = metrics_compute(periods=periods, cur=cur)
        cohort_cells = cohort_active_counts(cur, first=first_cohort, last_boundary=max(last_boundary, first_cohort))
    sizes = cohort_sizes(first=first_cohort, end=add_months(periods[-1].start.replace(day=1), 1))
    now = timezone.now()
    rows = [
        MetricSnapshot(metric=name, start=p.start, end=p.end, value=_decimal(f.value), numerator=_decimal(f.numerator),
                       denominator=_decimal(f.denominator), extra=f.extra, computed_at=now)
        for p, figures in computed.items() for name, f in figures.items()
    ]
    # The cohort matrix: (cohort month, boundary month) cells, and each cohort's size.
    rows += [MetricSnapshot(metric="cohort_active", start=c, end=b, value=n, computed_at=now) for (c, b), n in cohort_cells.items()]
    cohort_months = sorted({c for c, _ in cohort_cells} | set(sizes))
    rows += [MetricSnapshot(metric="cohort_size", start=c, end=add_months(c, 1), value=sizes.get(c, 0), computed_at=now)
             for c in cohort_months]
    # The KPI page's program tables, so the page reads a month instead of grouping its calls.
    for p in periods:
        rows.append(MetricSnapshot(metric=AGENT_TABLE, start=p.start, end=p.end, computed_at=now,
                                   extra={"rows": agent_table_compute(period=p)}))
        rows.append(MetricSnapshot(metric=REASON_COUNTS, start=p.start, end=p.end, computed_at=now,
                                   extra={"counts": reason_counts(period=p)}))
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


def recent_months(*, months: int = DEFAULT_MONTHS, today: dt.date | None = None) -> list[Period]:
    """The current month and the ``months - 1`` before it."""
    today = today or timezone.localdate()
    first = add_months(today.replace(day=1), -(months - 1))
    return months_between(first, add_months(today.replace(day=1), 1))


def month_periods_touching(*, since: dt.datetime) -> list[Period]:
    """The months from the one containing ``since`` to the current one (what a backfill changed)."""
    return months_between(month_of(timezone.localtime(since).date()).start, add_months(timezone.localdate().replace(day=1), 1))
