"""Hand what has come due to the workers, in batches, each touchpoint to one batch at a time.

The dispatcher claims due rows with FOR UPDATE SKIP LOCKED (two dispatchers never take the same row) and
stamps them ``queued_until``: until then no other dispatch queues them again. If the task never reaches a
worker (the broker was down, the message was lost), the stamp runs out and the next tick queues them again;
sending itself is guarded by the claim in sending.py, so a row queued twice is still sent once.
"""

import datetime as dt

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from touchpoints.models import Touchpoint
from touchpoints.services.sending import not_waiting, older_retrying, touchpoint_after_sent

Status = Touchpoint.Status


def touchpoints_dispatch(*, now: dt.datetime | None = None, batch_size: int | None = None,
                         limit: int | None = None) -> list[list[int]]:
    """Claim up to ``limit`` due touchpoints for queueing; returns them in batches of ``batch_size``.

    Call it inside a transaction and enqueue the batches on commit (tasks.py)."""
    now = now or timezone.now()
    batch_size = batch_size or settings.TOUCHPOINT_BATCH_SIZE
    limit = limit or settings.TOUCHPOINT_DISPATCH_LIMIT
    not_queued = Q(queued_until__isnull=True) | Q(queued_until__lt=now)
    skip = {"skip_locked": True} if connection.features.has_select_for_update_skip_locked else {}
    ids: list[int] = []
    # Due ones first (oldest first: after an outage the longest-waiting go first), but none behind an older
    # one to the same customer that waits for its next attempt (one due now goes first in this same walk;
    # the claim checks again); then ones a killed worker left half-sent.
    behind_older = Exists(older_retrying(customer_id=OuterRef("customer_id"), channel=OuterRef("channel"),
                                         due_at=OuterRef("due_at"), touchpoint_id=OuterRef("pk")).filter(retry_at__gt=now))
    for query in (
        Touchpoint.objects.filter(not_queued, not_waiting(now), ~behind_older, status=Status.SCHEDULED, due_at__lte=now)
        .order_by("due_at", "id"),
        Touchpoint.objects.filter(not_queued, status=Status.SENDING, lease_until__lt=now).order_by("lease_until", "id"),
    ):
        if len(ids) >= limit:
            break
        ids += list(query.select_for_update(**skip).values_list("id", flat=True)[: limit - len(ids)])
    if ids:
        Touchpoint.objects.filter(pk__in=ids).update(
            queued_until=now + dt.timedelta(seconds=settings.TOUCHPOINT_QUEUE_LEASE_SECONDS))
    return [ids[i : i + batch_size] for i in range(0, len(ids), batch_size)]


@transaction.atomic
def touchpoints_unqueue(*, touchpoint_ids: list[int]) -> int:
    """The broker refused the batch: make it due for the next tick right away."""
    return Touchpoint.objects.filter(pk__in=touchpoint_ids).update(queued_until=None)


def touchpoints_repair(*, now: dt.datetime | None = None, limit: int = 500) -> int:
    """Sent touchpoints whose worker died between recording the send and writing its Contact get it now."""
    now = now or timezone.now()
    ids = list(Touchpoint.objects.filter(status=Status.SENT, contact__isnull=True, channel__in=["email", "sms"],
                                         sent_at__lt=now - dt.timedelta(minutes=1)).values_list("id", flat=True)[:limit])
    for touchpoint_id in ids:
        touchpoint_after_sent(touchpoint_id=touchpoint_id)
    return len(ids)
