from typing import Any

from celery import Task, shared_task
from celery.signals import task_success

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
