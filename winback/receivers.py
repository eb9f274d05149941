from typing import Any

# Beyond this many customers (a bulk import) the next scheduled scan picks them up instead.
REFRESH_AT_ONCE_LIMIT = 500


def refresh_lifecycle_after_commit(*, customer_ids: list[int], **kwargs: Any) -> None:
    """A returning customer's case closes within seconds, not at the next hourly scan, so nobody calls
    a customer who has just ordered."""
    from winback.tasks import lifecycle_refresh_task

    if 0 < len(customer_ids) <= REFRESH_AT_ONCE_LIMIT:
        # Best effort: if the broker is down, the hourly scan refreshes them (their history_version moved).
        lifecycle_refresh_task.delay(list(customer_ids))
