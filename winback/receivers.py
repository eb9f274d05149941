"""What winback does when something it follows happens (connected in config/pipeline.py)."""

from typing import Any

from winback.tasks import lifecycle_refresh_task, lifecycle_scan_task, refresh_priorities_task, tune_lapse_rule_task

# Beyond this many customers (a bulk import) the next scheduled scan picks them up instead.
REFRESH_AT_ONCE_LIMIT = 500


def lifecycle_refresh_after_history_change(*, customer_ids: list[int], **kwargs: Any) -> None:
    """A returning customer's case closes within seconds, not at the next hourly scan, so nobody calls
    a customer who has just ordered. After commit, best effort: if the broker is down, the hourly scan
    refreshes them (their history_version moved)."""
    if 0 < len(customer_ids) <= REFRESH_AT_ONCE_LIMIT:
        lifecycle_refresh_task.delay(list(customer_ids))


def lifecycle_rebuild_after_policy_change(**kwargs: Any) -> None:
    lifecycle_scan_task.delay(full=True)


def priorities_refresh_after_predictions(*, customer_ids: list[int] | None, **kwargs: Any) -> None:
    """The queue ranks by the predicted recoverable value: after a fit or a rescore, the open cases follow.
    After a fit (everyone rescored), the lapse rules are backtested again on the orders: the admin says when
    another rule has become better than the current one."""
    refresh_priorities_task.delay(customer_ids)
    if customer_ids is None:
        tune_lapse_rule_task.delay()
