"""/health/: every loop the service depends on, and whether it is running.

``ok`` is False (the view answers 503) when the database or the broker cannot be reached, when the outbox
tick has not succeeded for ``HEALTH_TICK_STALE_SECONDS`` (beat or the workers stopped), or when a check
named in ``settings.HEALTH_CHECKS`` (the outbox's oldest due touchpoint, the settings rows) reports a
problem. The worker heartbeat and the last success of the other periodic tasks are reported for people.
"""

import datetime as dt
import os
from typing import Any

import redis

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection
from django.utils import timezone
from django.utils.module_loading import import_string
from django_otp.plugins.otp_totp.models import TOTPDevice

from core.models import BusinessSettings, UserPreference

from core.models import EnqueueFailure, Heartbeat

HEARTBEAT_STALE_SECONDS = 120
TICK_TASK = "touchpoints.tick"
# Periodic tasks whose last success is shown (core.tasks records it when each one succeeds).
REPORTED_TASKS = (TICK_TASK, "winback.lifecycle_scan", "metrics.refresh")


def task_heartbeat_name(task: str) -> str:
    return f"task:{task}"


def liveness_status() -> tuple[bool, dict[str, Any]]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means "down", reported as such
        return False, {"status": "error", "database": f"error: {exc.__class__.__name__}"}
    return True, {"status": "ok", "database": "ok"}


def health_status() -> tuple[bool, dict[str, Any]]:
    alive, checks = liveness_status()
    if not alive:
        return False, checks
    now = timezone.now()
    beats = dict(Heartbeat.objects.values_list("name", "beat_at"))
    ok = True

    worker_age = _age(now, beats.get("worker"))
    checks["worker_heartbeat_age_seconds"] = worker_age
    checks["worker"] = "ok" if worker_age is not None and worker_age < HEARTBEAT_STALE_SECONDS else "stale"

    checks["broker"] = "redis" if settings.REDIS_URL else "filesystem"
    broker_error = broker_ping()
    checks["broker_status"] = "ok" if broker_error is None else f"error: {broker_error}"
    ok &= broker_error is None

    last_success = {task: _age(now, beats.get(task_heartbeat_name(task))) for task in REPORTED_TASKS}
    checks["last_success_age_seconds"] = last_success
    tick_age = last_success[TICK_TASK]
    tick_ok = tick_age is not None and tick_age < settings.HEALTH_TICK_STALE_SECONDS
    checks["tick"] = "ok" if tick_ok else ("never ran" if tick_age is None else "stale")
    ok &= tick_ok

    failures = EnqueueFailure.objects.order_by("-last_at").values("task", "count", "last_at", "last_error")
    checks["enqueue_failures"] = [{**f, "last_at": f["last_at"].isoformat()} for f in failures]

    for path in settings.HEALTH_CHECKS:
        name, check_ok, detail = import_string(path)(now=now)
        checks[name] = detail
        ok &= check_ok
    checks["status"] = "ok" if ok else "error"
    return ok, checks


def _age(now: dt.datetime, at: dt.datetime | None) -> float | None:
    return round((now - at).total_seconds(), 1) if at else None


def broker_ping() -> str | None:
    """None when the broker answers, else why not."""
    if not settings.REDIS_URL:
        folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]
        return None if os.access(folder, os.W_OK) else f"{folder} is not writable"
    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        client.close()
    return None


# --- Logins -------------------------------------------------------------------------------------------

def totp_device_confirmed(*, user: AbstractBaseUser) -> TOTPDevice | None:
    """The person's authenticator (a confirmed TOTP device), if they set one up."""
    if not user.is_authenticated:
        return None
    return TOTPDevice.objects.devices_for_user(user, confirmed=True).order_by("pk").first()


def user_second_step_missing(*, user: AbstractBaseUser | AnonymousUser) -> bool:
    """True when the person set up an authenticator but this session did not give its code (a session older
    than the set-up, say): such a session gets no further than the login page's second step."""
    if not user.is_authenticated or getattr(user, "is_verified", lambda: False)():
        return False
    return totp_device_confirmed(user=user) is not None


def business_settings() -> BusinessSettings:
    """The business figures (one row, created with its defaults when missing)."""
    return BusinessSettings.objects.get_or_create(pk=1)[0]


def user_language(*, user: AbstractBaseUser | AnonymousUser) -> str:
    """The language a logged-in person chose ("" when none: their browser's applies)."""
    if not user.is_authenticated:
        return ""
    return UserPreference.objects.filter(user=user).values_list("language", flat=True).first() or ""
