import datetime as dt

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from metrics.services.periods import add_months, months_between
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
    this_month = timezone.localdate().replace(day=1)
    first = timezone.localtime(since).date().replace(day=1) if since is not None else this_month
    if full:
        args = {"months": DEFAULT_MONTHS}
    elif first < add_months(this_month, -1):  # a backfill reached further back (at most 120 months)
        args = {"start": max(first, add_months(this_month, -119)).isoformat(), "end": add_months(this_month, 1).isoformat()}
    else:
        args = {"months": 2}
    refresh_task.delay(**args)  # after commit, best effort: the nightly refresh covers a refused send
