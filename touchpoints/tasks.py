from celery import shared_task
from django.db import OperationalError, transaction

from touchpoints.services.dispatch import touchpoints_dispatch, touchpoints_repair, touchpoints_unqueue
from touchpoints.services.materialize import touchpoints_materialize
from touchpoints.services.outage import touchpoints_release_waiting
from touchpoints.services.sending import touchpoint_send
from touchpoints.services.transports import EmailTransport, mail_server_probe


@shared_task(name="touchpoints.tick", ignore_result=True, autoretry_for=(OperationalError,), retry_backoff=5, max_retries=3)
def tick_task() -> str:
    """Every minute (beat): materialise what happened, queue what has come due."""
    materialized = touchpoints_materialize()
    released = touchpoints_release_waiting(probe=mail_server_probe)
    queued = touchpoints_queue_due()
    repaired = touchpoints_repair()
    return (f"{materialized.total} touchpoints created, {released} released after a mail server outage, "
            f"{queued} queued, {repaired} contacts repaired"
            + (f", {len(materialized.skipped)} cadences or steps skipped (see the log)" if materialized.skipped else ""))


def touchpoints_queue_due() -> int:
    with transaction.atomic():
        batches = touchpoints_dispatch()
        for batch in batches:
            transaction.on_commit(lambda ids=batch: _enqueue(ids))
    return sum(map(len, batches))


def _enqueue(ids: list[int]) -> None:
    if send_batch_task.delay(ids) is None:  # refused (logged and counted by the task base)
        # The broker is down: leave them due for the next tick instead of waiting out the queue lease.
        touchpoints_unqueue(touchpoint_ids=ids)


@shared_task(name="touchpoints.send_batch", ignore_result=True, autoretry_for=(OperationalError,), retry_backoff=5, max_retries=3)
def send_batch_task(touchpoint_ids: list[int]) -> dict[str, int]:
    # Safe to run twice: each touchpoint is claimed before it is sent, and a sent one is never claimed again.
    outcomes: dict[str, int] = {}
    transport = EmailTransport()
    try:
        for touchpoint_id in touchpoint_ids:
            outcome = touchpoint_send(touchpoint_id=touchpoint_id, transport=transport)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    finally:
        transport.close()
    return outcomes
