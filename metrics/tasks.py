import datetime as dt

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from metrics.services.periods import add_months, months_between
from metrics.services.snapshots import DEFAULT_MONTHS, metrics_refresh, metrics_refresh_start, recent_months

# Up to this many months (a scan's: this month and the last; a page's "refresh now" of a month or a quarter)
# the refresh runs in this task; more (the nightly 36, a full rebuild's, a backfill's) is a batch run whose
# parts spread over the workers.
IN_TASK_MONTHS = 3


@shared_task(name="metrics.refresh", ignore_result=True, autoretry_for=(OperationalError,), retry_backoff=30, max_retries=3)
def refresh_task(months: int = DEFAULT_MONTHS, start: str | None = None, end: str | None = None) -> str:
    """Nightly (beat), after lifecycle scans and from the KPI page. Safe to run twice: a period's rows are
    replaced, not added. A long refresh starts a batch run and returns without waiting for it."""
    if start and end:
        periods = months_between(dt.date.fromisoformat(start), dt.date.fromisoformat(end))
    else:
        periods = recent_months(months=months)
    if len(periods) > IN_TASK_MONTHS:
        run = metrics_refresh_start(periods=periods)
        return f"batch run {run.pk}: {len(periods)} months in {run.parts_total} batches"
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
