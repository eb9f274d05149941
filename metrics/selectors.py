"""Reads of the stored snapshots (metrics_refresh in services/snapshots.py writes them)."""

from metrics.models import MetricSnapshot
from metrics.services.calculators import Figure
from metrics.services.definitions import ALL
from metrics.services.periods import Period


def snapshot_figures(*, period: Period) -> dict[str, Figure] | None:
    """The stored figures of a period, or None when it has not been computed."""
    # (Only the figures: a cohort cell of a cohort and the month after it shares the month's dates.)
    rows = list(MetricSnapshot.objects.filter(start=period.start, end=period.end, metric__in=list(ALL)))
    if not rows:
        return None
    return {r.metric: Figure(r.metric, _float(r.value), _float(r.numerator), _float(r.denominator), r.extra) for r in rows}


def _float(x) -> float | None:
    return None if x is None else float(x)


def snapshot_series(*, metric: str, periods: list[Period]) -> dict[Period, MetricSnapshot]:
    rows = MetricSnapshot.objects.filter(metric=metric, start__in=[p.start for p in periods])
    wanted = set(periods)
    return {Period(r.start, r.end): r for r in rows if Period(r.start, r.end) in wanted}
