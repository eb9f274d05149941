from django.db.models import F
from django.utils import timezone

from core.models import EnqueueFailure, Heartbeat


def heartbeat_record(*, name: str, worker: str) -> Heartbeat:
    heartbeat, _ = Heartbeat.objects.update_or_create(
        name=name, defaults={"beat_at": timezone.now(), "worker": worker[:200]}
    )
    return heartbeat


def enqueue_failure_record(*, task: str, error: str) -> None:
    now = timezone.now()
    updated = EnqueueFailure.objects.filter(task=task).update(count=F("count") + 1, last_at=now, last_error=error[:500])
    if not updated:
        _, created = EnqueueFailure.objects.get_or_create(
            task=task, defaults={"count": 1, "last_at": now, "last_error": error[:500]}
        )
        if not created:  # a concurrent first failure made the row in between
            EnqueueFailure.objects.filter(task=task).update(count=F("count") + 1, last_at=now, last_error=error[:500])
