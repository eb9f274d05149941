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


def refresh_after_scan(*, full: bool, **kwargs) -> None:
    """A full scan (a policy change, a backfill) may change any month; an incremental one the recent ones
    (an event is dated when it happened: a late scan still lands in this or last month)."""
    from django.db import transaction

    months = DEFAULT_MONTHS if full else 2
    transaction.on_commit(lambda: refresh_task.delay(months=months))
