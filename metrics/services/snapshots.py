"""Snapshots: every figure for every month, stored so pages and series read them instead of recomputing.

A refresh computes the periods first, then replaces their rows in one transaction: a period is either
entirely the old figures or entirely the new ones, and running it again replaces rather than adds.
"""

import datetime as dt
from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from metrics.models import MetricSnapshot
from metrics.services.calculators import Figure, metrics_compute
from metrics.services.periods import Period, add_months, month_of, months_between

DEFAULT_MONTHS = 36


def _decimal(x: float | None):
    return None if x is None else round(x, 6)


def metrics_refresh(*, periods: Iterable[Period]) -> int:
    """Recompute and store the periods; returns the number of snapshot rows written."""
    periods = sorted(set(periods))
    if not periods:
        return 0
    computed = metrics_compute(periods=periods)
    now = timezone.now()
    rows = [
        MetricSnapshot(metric=name, start=p.start, end=p.end, value=_decimal(f.value), numerator=_decimal(f.numerator),
                       denominator=_decimal(f.denominator), extra=f.extra, computed_at=now)
        for p, figures in computed.items() for name, f in figures.items()
    ]
    with transaction.atomic():
        for p in periods:
            MetricSnapshot.objects.filter(start=p.start, end=p.end).delete()
        MetricSnapshot.objects.bulk_create(rows, batch_size=1000)
    return len(rows)


def recent_months(*, months: int = DEFAULT_MONTHS, today: dt.date | None = None) -> list[Period]:
    """The current month and the ``months - 1`` before it."""
    today = today or timezone.localdate()
    first = add_months(today.replace(day=1), -(months - 1))
    return months_between(first, add_months(today.replace(day=1), 1))


def snapshot_figures(*, period: Period) -> dict[str, Figure] | None:
    """The stored figures of a period, or None when it has not been computed."""
    rows = list(MetricSnapshot.objects.filter(start=period.start, end=period.end))
    if not rows:
        return None
    return {r.metric: Figure(r.metric, _float(r.value), _float(r.numerator), _float(r.denominator), r.extra) for r in rows}


def _float(x) -> float | None:
    return None if x is None else float(x)


def snapshot_series(*, metric: str, periods: list[Period]) -> dict[Period, MetricSnapshot]:
    rows = MetricSnapshot.objects.filter(metric=metric, start__in=[p.start for p in periods])
    wanted = set(periods)
    return {Period(r.start, r.end): r for r in rows if Period(r.start, r.end) in wanted}


def month_periods_touching(*, since: dt.datetime) -> list[Period]:
    """The months from the one containing ``since`` to the current one (what a backfill changed)."""
    return months_between(month_of(timezone.localtime(since).date()).start, add_months(timezone.localdate().replace(day=1), 1))
