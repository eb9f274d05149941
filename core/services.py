from django.utils import timezone

from core.models import Heartbeat


def heartbeat_record(*, name: str, worker: str) -> Heartbeat:
    heartbeat, _ = Heartbeat.objects.update_or_create(
        name=name, defaults={"beat_at": timezone.now(), "worker": worker[:200]}
    )
    return heartbeat
