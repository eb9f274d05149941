from typing import Any

from django.db import transaction

# Beyond this many customers (a bulk import) the next scheduled scan picks them up instead.
REFRESH_AT_ONCE_LIMIT = 500


def refresh_lifecycle_after_commit(*, customer_ids: list[int], **kwargs: Any) -> None:
    """A returning customer's case closes within seconds, not at the next hourly scan, so nobody calls
    a customer who has just ordered."""
    from winback.tasks import lifecycle_refresh_task

    if 0 < len(customer_ids) <= REFRESH_AT_ONCE_LIMIT:
        ids = list(customer_ids)
        transaction.on_commit(lambda: lifecycle_refresh_task.delay(ids))
