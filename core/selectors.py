from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from core.models import Heartbeat

HEARTBEAT_STALE_SECONDS = 120


def health_status() -> tuple[bool, dict[str, Any]]:
    """Database reachable (required for "ok"), and when a worker last ran a beat-scheduled task."""
    checks: dict[str, Any] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means "down", reported as such
        checks["database"] = f"error: {exc.__class__.__name__}"
        return False, checks
    beat: datetime | None = (
        Heartbeat.objects.filter(name="worker").values_list("beat_at", flat=True).first()
    )
    age = (timezone.now() - beat).total_seconds() if beat else None
    checks["worker_heartbeat_age_seconds"] = round(age, 1) if age is not None else None
    checks["worker"] = "ok" if age is not None and age < HEARTBEAT_STALE_SECONDS else "stale"
    checks["broker"] = "redis" if settings.REDIS_URL else "filesystem"
    return True, checks
