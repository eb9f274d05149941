import datetime as dt

from celery import shared_task
from django.db import OperationalError

from predictions.services.fitting import models_fit
from predictions.services.scoring import predictions_refresh


@shared_task(name="predictions.fit", ignore_result=True, autoretry_for=(OperationalError,), retry_backoff=60, max_retries=2)
def fit_task(as_of: str | None = None) -> str:
    """Nightly (beat). Safe to run twice: each run adds its fit rows and rewrites the predictions."""
    return models_fit(as_of=dt.datetime.fromisoformat(as_of) if as_of else None, trigger="nightly").summary()


@shared_task(name="predictions.refresh", ignore_result=True, autoretry_for=(OperationalError,), retry_backoff=5, max_retries=3)
def refresh_task(customer_ids: list[int]) -> int:
    return predictions_refresh(customer_ids=customer_ids)
