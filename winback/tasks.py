from celery import shared_task
from django.db import OperationalError

from django.utils import timezone

from winback.services.cases import cases_refresh_predicted_value
from winback.services.lifecycle import lifecycle_refresh, lifecycle_scan_start


@shared_task(
    name="winback.lifecycle_scan", ignore_result=True, autoretry_for=(OperationalError,),
    retry_backoff=30, max_retries=3,
)
def lifecycle_scan_task(full: bool = False) -> str:
    """Starts the scan's batches on the workers and returns (an incremental scan turns full after a policy
    change: a million customers are no job for one task). Safe to run twice: a scan makes the stored events
    equal to what the history says, and a second full scan of a policy joins the running one."""
    return str(lifecycle_scan_start(full=full))


@shared_task(
    name="winback.lifecycle_refresh", ignore_result=True, autoretry_for=(OperationalError,),
    retry_backoff=5, max_retries=3,
)
def lifecycle_refresh_task(customer_ids: list[int]) -> None:
    lifecycle_refresh(customer_ids=customer_ids)


@shared_task(
    name="winback.refresh_priorities", ignore_result=True, autoretry_for=(OperationalError,),
    retry_backoff=5, max_retries=3,
)
def refresh_priorities_task(customer_ids: list[int] | None = None) -> int:
    # Safe to run twice: it sets the open cases' predicted value to what the predictions say.
    return cases_refresh_predicted_value(now=timezone.now(), customer_ids=customer_ids)


@shared_task(name="winback.tune_lapse_rule", ignore_result=True, autoretry_for=(OperationalError,), retry_backoff=60,
             max_retries=2)
def tune_lapse_rule_task() -> str:
    """After each nightly fit. Safe to run twice: each run adds a row; the admin shows the latest."""
    # Imported here: the backtest's scipy would cost every process that loads the tasks a second at start-up.
    from winback.services.rule_tuning import lapse_rule_tune

    tuning = lapse_rule_tune()
    return tuning.reason or f"best {tuning.best_key}, better than the current rule: {tuning.better}"
