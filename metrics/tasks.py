import datetime as dt

from celery import shared_task
from django.db import OperationalError

from metrics.services.periods import Period, months_between
from metrics.services.snapshots import DEFAULT_MONTHS, metrics_refresh, recent_months


@shared_task(name="metrics.refresh", ignore_result=True, autoretry_for=(OperationalError,), retry_backoff=30, max_retries=3)
def refresh_task(months: int = DEFAULT_MONTHS, start: str | None = None, end: str | None = None) -> str:
    """Nightly (beat) and after lifecycle scans. Safe to run twice: a period's rows are replaced, not added."""
    if start and end:
        periods = months_between(dt.date.fromisoformat(start), dt.date.fromisoformat(end))
    else:
        periods = recent_months(months=months)
    rows = metrics_refresh(periods=periods)
    return f"{rows} snapshot rows for {len(periods)} months"


def refresh_after_scan(*, full: bool, since: dt.datetime | None = None, **kwargs) -> None:
    """A full scan (a policy change, a rebuild) may change any month: the last 36. An incremental one
    changed the months from its earliest changed event on (a backfill reaches back; otherwise this month
    and the last, as an event is dated when it happened)."""
    from django.db import transaction
    from django.utils import timezone

    if full:
        kwargs_ = {"months": DEFAULT_MONTHS}
    elif since is not None:
        first = timezone.localtime(since).date().replace(day=1)
        kwargs_ = {"start": max(first, recent_months(months=120)[0].start).isoformat(),
                   "end": (timezone.localdate().replace(day=1) + dt.timedelta(days=32)).replace(day=1).isoformat()}
        if first >= recent_months(months=2)[0].start:
            kwargs_ = {"months": 2}
    else:
        kwargs_ = {"months": 2}
    transaction.on_commit(lambda: refresh_task.delay(**kwargs_))
