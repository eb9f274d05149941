"""What the pages and the API read: snapshots where they exist, live figures otherwise."""

import datetime as dt
from dataclasses import dataclass

from django.utils import timezone

from metrics.models import MetricSnapshot
from metrics.services.calculators import Figure, metrics_compute
from metrics.services.periods import Period, months_between
from metrics.selectors import snapshot_figures, snapshot_series


@dataclass
class KpiResult:
    figures: dict[str, Figure]
    source: str  # snapshot | live
    computed_at: dt.datetime | None


def kpis_for_period(*, period: Period, live: bool = False) -> KpiResult:
    if not live:
        stored = snapshot_figures(period=period)
        if stored is not None:
            at = (MetricSnapshot.objects.filter(start=period.start, end=period.end, metric="CS")
                  .values_list("computed_at", flat=True).first())
            return KpiResult(stored, "snapshot", at)
    return KpiResult(metrics_compute(periods=[period])[period], "live", timezone.now())


def series_for(*, metric: str, start: dt.date, end: dt.date) -> list[dict]:
    """The metric month by month: snapshots, and the months without one computed now (in one pass)."""
    months = months_between(start, end)
    stored = snapshot_series(metric=metric, periods=months)
    missing = [p for p in months if p not in stored]
    live = metrics_compute(periods=missing) if missing else {}
    points = []
    for p in months:
        if p in stored:
            row = stored[p]
            value, num, den, source = row.value, row.numerator, row.denominator, "snapshot"
            value, num, den = (None if x is None else float(x) for x in (value, num, den))
        else:
            f = live[p][metric]
            value, num, den, source = f.value, f.numerator, f.denominator, "live"
        points.append({"period": p.label(), "start": p.start, "end": p.end, "value": value, "numerator": num,
                       "denominator": den, "source": source})
    return points
