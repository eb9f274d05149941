"""What the pages and the API read: snapshots where they exist, live figures otherwise."""

import datetime as dt
from dataclasses import dataclass

from django.utils import timezone

from metrics.models import MetricSnapshot
from metrics.services.calculators import Figure, metrics_compute
from metrics.services.definitions import ALL
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
        # A snapshot from before a figure was added lacks it: computed now until the next refresh.
        if stored is not None and set(ALL) <= set(stored):
            at = (MetricSnapshot.objects.filter(start=period.start, end=period.end, metric="CS")
                  .values_list("computed_at", flat=True).first())
            return KpiResult(stored, "snapshot", at)
    return KpiResult(metrics_compute(periods=[period])[period], "live", timezone.now())


def series_for(*, metric: str, start: dt.date, end: dt.date) -> list[dict]:
    """The metric month by month: snapshots, and the months without one computed now (in one pass)."""
    return series_many(metrics=[metric], start=start, end=end)[metric]


def series_many(*, metrics: list[str], start: dt.date, end: dt.date) -> dict[str, list[dict]]:
    """Several metrics month by month; the months some metric has no snapshot for are computed in one pass
    for all of them."""
    months = months_between(start, end)
    stored = {metric: snapshot_series(metric=metric, periods=months) for metric in metrics}
    missing = sorted({p for metric in metrics for p in months if p not in stored[metric]})
    live = metrics_compute(periods=missing) if missing else {}
    out: dict[str, list[dict]] = {}
    for metric in metrics:
        points = []
        for p in months:
            if p in stored[metric]:
                row = stored[metric][p]
                value, num, den = (None if x is None else float(x) for x in (row.value, row.numerator, row.denominator))
                source = "snapshot"
            else:
                f = live[p][metric]
                value, num, den, source = f.value, f.numerator, f.denominator, "live"
            points.append({"period": p.label(), "start": p.start, "end": p.end, "value": value, "numerator": num,
                           "denominator": den, "source": source})
        out[metric] = points
    return out
