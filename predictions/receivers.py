"""What predictions does when something it follows happens (connected in config/pipeline.py)."""

from typing import Any

from predictions.selectors import fits_exist
from predictions.tasks import refresh_task

# Beyond this many customers (a bulk import) the nightly fit rescores them instead.
REFRESH_AT_ONCE_LIMIT = 500


def predictions_refresh_after_history_change(*, customer_ids: list[int], **kwargs: Any) -> None:
    """A customer who just ordered gets a P(alive) that knows it. After commit, best effort: the nightly fit
    rescores everyone. Before any usable fit there is nothing to rescore, and no message is sent."""
    if 0 < len(customer_ids) <= REFRESH_AT_ONCE_LIMIT and fits_exist():
        refresh_task.delay(list(customer_ids))
