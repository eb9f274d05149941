"""The outbox's and the settings' part of /health/ (core.selectors, settings.HEALTH_CHECKS)."""

import datetime as dt
from typing import Any

from django.conf import settings
from django.db.models import Count, Min

from touchpoints.models import Touchpoint
from touchpoints.selectors import settings_problems as touchpoints_settings_problems
from touchpoints.services.outage import waiting_for_mail_server
from touchpoints.services.sending import not_waiting
from winback.selectors import settings_problems as winback_settings_problems


def outbox_health(*, now: dt.datetime) -> tuple[str, bool, dict[str, Any]]:
    """The oldest due touchpoint's age, and the mail server: touchpoints waiting for it for longer than
    HEALTH_OUTBOX_MAX_AGE_SECONDS are an outage (503): nothing is lost, but nothing goes out either, and
    after TOUCHPOINT_RETRY_WINDOW_HOURS they fail, so someone must look now. A shorter blip is reported, not
    an error."""
    # Deferred touchpoints (quiet hours, caps) carry their new due time, and retries wait for their retry_at,
    # so only a stalled outbox ages here.
    oldest = (Touchpoint.objects.filter(not_waiting(now), status=Touchpoint.Status.SCHEDULED, due_at__lte=now)
              .aggregate(m=Min("due_at"))["m"])
    age = round((now - oldest).total_seconds(), 1) if oldest else 0.0
    limit = settings.HEALTH_OUTBOX_MAX_AGE_SECONDS
    outbox_ok = age <= limit
    mail = _mail_server(now=now, limit=limit)
    ok = outbox_ok and mail["status"] != "unavailable"
    status = "ok" if ok else ("mail server unavailable" if mail["status"] == "unavailable" else "behind")
    return "outbox", ok, {"status": status, "oldest_due_age_seconds": age, "limit_seconds": limit, "mail_server": mail}


def _mail_server(*, now: dt.datetime, limit: int) -> dict[str, Any]:
    waiting = waiting_for_mail_server()
    found = waiting.aggregate(count=Count("id"), since=Min("retry_since"), next_attempt_at=Min("retry_at"))
    if not found["count"]:
        return {"status": "ok", "waiting": 0}
    since = found["since"] or now
    down = round((now - since).total_seconds(), 1)
    last = waiting.order_by("-updated_at").values_list("last_error", flat=True).first() or ""
    return {
        "status": "unavailable" if down > limit else "retrying", "waiting": found["count"],
        "since": since.isoformat(), "down_seconds": down, "next_attempt_at": found["next_attempt_at"].isoformat(),
        "last_error": last[:300],
    }


def settings_health(*, now: dt.datetime) -> tuple[str, bool, dict[str, Any]]:
    """Problems with the stored settings, cadences, policy and offers (a bad row is skipped, not fatal, but
    it stops what it configures: someone must fix it)."""
    problems = [str(p) for p in winback_settings_problems() + touchpoints_settings_problems()]
    return "settings", not problems, {"status": "ok" if not problems else "problems", "problems": problems}
