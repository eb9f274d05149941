"""The outbox's and the settings' part of /health/ (core.selectors, settings.HEALTH_CHECKS)."""

import datetime as dt
from typing import Any

from django.conf import settings
from django.db.models import Min

from touchpoints.models import Touchpoint
from touchpoints.selectors import settings_problems as touchpoints_settings_problems
from winback.selectors import settings_problems as winback_settings_problems


def outbox_health(*, now: dt.datetime) -> tuple[str, bool, dict[str, Any]]:
    # Deferred touchpoints (quiet hours, caps) carry their new due time, so only a stalled outbox ages here.
    oldest = Touchpoint.objects.filter(status=Touchpoint.Status.SCHEDULED, due_at__lte=now).aggregate(m=Min("due_at"))["m"]
    age = round((now - oldest).total_seconds(), 1) if oldest else 0.0
    ok = age <= settings.HEALTH_OUTBOX_MAX_AGE_SECONDS
    return "outbox", ok, {"status": "ok" if ok else "behind", "oldest_due_age_seconds": age,
                          "limit_seconds": settings.HEALTH_OUTBOX_MAX_AGE_SECONDS}


def settings_health(*, now: dt.datetime) -> tuple[str, bool, dict[str, Any]]:
    """Problems with the stored settings, cadences, policy and offers (a bad row is skipped, not fatal, but
    it stops what it configures: someone must fix it)."""
    problems = [str(p) for p in winback_settings_problems() + touchpoints_settings_problems()]
    return "settings", not problems, {"status": "ok" if not problems else "problems", "problems": problems}
