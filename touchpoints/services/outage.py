"""A mail server outage: the touchpoints waiting for it go as soon as it is back, oldest first.

Each waiting touchpoint has its own next attempt (backoff capped at TOUCHPOINT_RETRY_MAX_DELAY_SECONDS), so
after a long outage the last of them could wait that long again once the server is back. Instead, every tick
that finds touchpoints waiting asks the server (transports.mail_server_probe: connect, EHLO, NOOP, MAIL
FROM, nothing sent); when it answers, they all become due at once. The dispatcher then hands them out in
due order, in batches of TOUCHPOINT_BATCH_SIZE, at most TOUCHPOINT_DISPATCH_LIMIT a tick, like any other.
"""

import datetime as dt
import logging
from collections.abc import Callable

from django.db import transaction
from django.utils import timezone

from touchpoints.models import Touchpoint

log = logging.getLogger(__name__)


def waiting_for_mail_server():
    return Touchpoint.objects.filter(status=Touchpoint.Status.SCHEDULED, reason=Touchpoint.Reason.MAIL_SERVER)


def touchpoints_release_waiting(*, probe: Callable[[], str | None], now: dt.datetime | None = None) -> int:
    """When the mail server answers again, make every touchpoint waiting for it due now; returns how many."""
    now = now or timezone.now()
    held = waiting_for_mail_server().filter(retry_at__gt=now)
    if not held.exists():
        return 0
    error = probe()
    if error is not None:
        log.info("the mail server is still unavailable: %s", error)
        return 0
    with transaction.atomic():
        released = held.update(retry_at=now, updated_at=now)
    log.info("the mail server answers again: %s waiting touchpoints are due now", released)
    return released
