from typing import Any

from celery import Task, shared_task
from celery.signals import task_success
from django.db import OperationalError

from core.batches import batch_part_run, batch_run_finish, batch_runs_prune, batch_runs_resume
from core.selectors import REPORTED_TASKS, task_heartbeat_name
from core.services import heartbeat_record


@shared_task(name="core.heartbeat", ignore_result=True)
def heartbeat(name: str = "worker") -> None:
    heartbeat_record(name=name, worker=heartbeat.request.hostname or "")


@task_success.connect
def _record_periodic_success(sender: Task | None = None, **kwargs: Any) -> None:
    """The last success of each loop /health/ watches (core.selectors.REPORTED_TASKS)."""
    if sender is not None and sender.name in REPORTED_TASKS:
        heartbeat_record(name=task_heartbeat_name(sender.name), worker=sender.request.hostname or "")


# Batch runs (core/batches.py). A database that refused for a moment (a deadlock between parts, a lost
# connection) is retried with a backoff; any other error marks the run failed with the reason.
BATCH_RETRIES = 3


@shared_task(bind=True, name="core.batch_part", ignore_result=True)
def batch_part_task(self: Task, part_id: int) -> None:
    try:
        batch_part_run(part_id=part_id)
    except OperationalError as exc:
        if self.request.retries >= BATCH_RETRIES:
            raise
        raise self.retry(exc=exc, countdown=5 * 2 ** self.request.retries) from exc


@shared_task(bind=True, name="core.batch_finish", ignore_result=True)
def batch_finish_task(self: Task, run_id: int) -> None:
    try:
        batch_run_finish(run_id=run_id)
    except OperationalError as exc:
        if self.request.retries >= BATCH_RETRIES:
            raise
        raise self.retry(exc=exc, countdown=5 * 2 ** self.request.retries) from exc


@shared_task(name="core.batch_runs_resume", ignore_result=True)
def batch_runs_resume_task() -> int:
    batch_runs_prune()
    return batch_runs_resume()
