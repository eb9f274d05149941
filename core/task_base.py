"""The one task base (config/celery.py makes it every task's): enqueued after commit, best effort.

``task.delay(...)`` inside a transaction sends the message once the transaction commits (a worker never
reads rows that are not there yet, and a rolled-back request enqueues nothing), as pretix's
TransactionAwareTask does. The send is best effort: if the broker refuses it, the refusal is logged and
counted (``/health/`` shows it) and the caller's committed work stands; every task enqueued from a request
or an import has a periodic sweep that does the same work later (the hourly lifecycle scan picks up every
customer whose history changed, the nightly KPI refresh recent months, the outbox tick every due
touchpoint), so an outage delays work and loses none.
"""

import logging
from typing import Any

from celery import Task
from celery.result import AsyncResult
from django.db import transaction

from core.services import enqueue_failure_record

log = logging.getLogger(__name__)


class AfterCommitTask(Task):
    def apply_async(self, args: Any = None, kwargs: Any = None, **options: Any) -> AsyncResult | None:
        """None when the send was deferred to the commit, or refused by the broker."""
        if transaction.get_connection().in_atomic_block:
            transaction.on_commit(lambda: self._send(args, kwargs, options))
            return None
        return self._send(args, kwargs, options)

    def _send(self, args: Any, kwargs: Any, options: dict[str, Any]) -> AsyncResult | None:
        try:
            # retry=True with the short publish retry policy in settings: a refused connection fails
            # within a second, where kombu's own connection retries (retry=False) take several.
            return super().apply_async(args, kwargs, **{"retry": True, **options})
        except Exception as exc:  # noqa: BLE001 - whatever the broker raised, the caller's work is committed
            log.warning("broker refused %s (%s: %s); the periodic sweep will do it", self.name, type(exc).__name__, exc)
            try:
                enqueue_failure_record(task=self.name, error=f"{type(exc).__name__}: {exc}")
            except Exception:  # noqa: BLE001 - counting is secondary; never fail a committed write
                log.exception("could not count the refused enqueue of %s", self.name)
            return None
