import logging
from collections.abc import Callable
from typing import Any

from celery import Task, shared_task
from celery.signals import task_success
from django.db import transaction

from core.selectors import REPORTED_TASKS, task_heartbeat_name
from core.services import enqueue_failure_record, heartbeat_record

log = logging.getLogger(__name__)


@shared_task(name="core.heartbeat", ignore_result=True)
def heartbeat(name: str = "worker") -> None:
    heartbeat_record(name=name, worker=heartbeat.request.hostname or "")


def task_enqueue(task: Task, *args: Any, **kwargs: Any) -> bool:
    """Send ``task`` to the broker now; False (logged and counted) when the broker refuses it.

    Best effort by design: every task enqueued this way has a periodic sweep that does the same work later
    (the hourly lifecycle scan picks up every customer whose history changed, the nightly KPI refresh every
    recent month, the outbox tick every due touchpoint), so a broker outage delays work and loses none.
    """
    try:
        # retry=True with the short publish retry policy in settings: a refused connection fails within a
        # second, where kombu's own connection retries (retry=False) take several.
        task.apply_async(args=args, kwargs=kwargs, retry=True)
    except Exception as exc:  # noqa: BLE001 - whatever the broker raised, the caller's work is committed
        log.warning("broker refused %s (%s: %s); the periodic sweep will do it", task.name, type(exc).__name__, exc)
        try:
            enqueue_failure_record(task=task.name, error=f"{type(exc).__name__}: {exc}")
        except Exception:  # noqa: BLE001 - counting is secondary; never turn a committed write into an error
            log.exception("could not count the refused enqueue of %s", task.name)
        return False
    return True


def enqueue_after_commit(task: Task, *args: Any, **kwargs: Any) -> None:
    """Enqueue ``task`` once the current transaction commits (at once outside one), best effort."""
    transaction.on_commit(_sender(task, args, kwargs))


def _sender(task: Task, args: tuple, kwargs: dict) -> Callable[[], None]:
    return lambda: task_enqueue(task, *args, **kwargs)


@task_success.connect
def _record_periodic_success(sender: Task | None = None, **kwargs: Any) -> None:
    """The last success of each loop /health/ watches (core.selectors.REPORTED_TASKS)."""
    if sender is not None and sender.name in REPORTED_TASKS:
        heartbeat_record(name=task_heartbeat_name(sender.name), worker=sender.request.hostname or "")
