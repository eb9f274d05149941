import datetime as dt

from celery import shared_task
from django.db import OperationalError

# The model code (numpy, scipy) is imported inside the tasks: every process that loads the task modules (web,
# each command, each worker) would otherwise pay about a second for it at start-up.


@shared_task(name="predictions.fit", ignore_result=True, autoretry_for=(OperationalError,), retry_backoff=60, max_retries=2)
def fit_task(as_of: str | None = None) -> str:
    """Nightly (beat). Safe to run twice: each run adds its fit rows and rewrites the predictions."""
    from predictions.services.fitting import models_fit

    return models_fit(as_of=dt.datetime.fromisoformat(as_of) if as_of else None, trigger="nightly").summary()


@shared_task(name="predictions.refresh", ignore_result=True, autoretry_for=(OperationalError,), retry_backoff=5, max_retries=3)
def refresh_task(customer_ids: list[int]) -> int:
    from predictions.services.scoring import predictions_refresh

    return predictions_refresh(customer_ids=customer_ids)
