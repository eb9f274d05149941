"""Batch runs: a large job (a full lifecycle scan, a 36-month KPI refresh, a large import) split into parts
that run as independent tasks on the Celery workers, followed by a finishing step once every part is done.

A business that outgrows one machine adds worker machines: the parts spread over whatever workers listen.
Each part's work and its "done" mark commit in one transaction, so a part delivered twice (a redelivered
task after a worker died, the resume sweep) finds itself done and does nothing; the part that completes the
count enqueues the finishing task (a countdown latch on the run's row rather than a Celery chord: it needs
no result backend, works on the embedded filesystem broker, and survives a worker restart). ``inline=True``
runs the same parts and the same finish in the calling process, in order (the commands' ``--inline``).

A kind of batch registers its two functions (``batch_kind_register``, from its app's ``ready()``):
``run_part(*, run, params) -> dict`` and ``finish(*, run, results) -> dict``; both must be safe to run twice,
and parts of one run must be safe beside each other (disjoint rows, or upserts and increments that commute).
"""

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from celery import current_app
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from core.models import BatchRun, BatchRunPart

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 2000  # a traceback's last line is what a person needs; the log has the rest
# The tasks (core/tasks.py) are sent by name: they call this module, so it does not import theirs. Every
# process registers them at start-up (core's AppConfig.ready), not only the workers.
PART_TASK, FINISH_TASK = "core.batch_part", "core.batch_finish"


@dataclass(frozen=True)
class BatchKind:
    name: str
    run_part: Callable[..., dict[str, Any]]
    finish: Callable[..., dict[str, Any]]
    # Finished runs older than this are deleted (an hourly scan leaves 8,760 a year); None keeps them, as an
    # import's run must be: its orders carry its id.
    keep_days: int | None = None


class BatchRunFailed(Exception):
    def __init__(self, run: BatchRun) -> None:
        super().__init__(f"{run.label or run.kind} (run {run.pk}) failed: {run.error}")
        self.run = run


_KINDS: dict[str, BatchKind] = {}


def batch_kind_register(kind: BatchKind) -> None:
    _KINDS[kind.name] = kind


def batch_kind(name: str) -> BatchKind:
    try:
        return _KINDS[name]
    except KeyError:
        raise LookupError(f"no batch kind {name!r} is registered (known: {', '.join(sorted(_KINDS)) or 'none'})") from None


def _send(task_name: str, arg: int) -> None:
    current_app.tasks[task_name].delay(arg)


def batch_run_start(
    *, kind: str, parts: list[dict[str, Any]], params: dict[str, Any] | None = None, label: str = "",
    inline: bool = False, user=None, progress: bool = False,
) -> BatchRun:
    """Create the run and its parts; on the workers (returns at once) or ``inline`` (returns it finished).

    Raises BatchRunFailed when an inline run fails (the run's row says which part and why)."""
    batch_kind(kind)  # an unknown kind fails here, before anything is written or enqueued
    with transaction.atomic():
        run = BatchRun.objects.create(kind=kind, label=label[:200], params=params or {}, parts_total=len(parts),
                                      inline=inline, created_by=user if getattr(user, "pk", None) else None)
        BatchRunPart.objects.bulk_create([BatchRunPart(run=run, index=i, params=p) for i, p in enumerate(parts)])
        if not inline:
            for part_id in run.parts.order_by("index").values_list("id", flat=True):
                _send(PART_TASK, part_id)  # after the commit (core/task_base.py)
            if not parts:
                _send(FINISH_TASK, run.pk)
    if inline:
        _run_inline(run, progress=progress)
    return run


def _run_inline(run: BatchRun, *, progress: bool) -> None:
    from tqdm import tqdm

    part_ids = list(run.parts.order_by("index").values_list("id", flat=True))
    try:
        for part_id in tqdm(part_ids, desc=run.label or run.kind, unit="batch", disable=not progress):
            batch_part_run(part_id=part_id)
        batch_run_finish(run_id=run.pk)
    except Exception:
        run.refresh_from_db()
        raise BatchRunFailed(run) from None
    run.refresh_from_db()


def batch_part_run(*, part_id: int) -> bool:
    """Run one part unless it is done; True when it ran. The last part to finish enqueues the finish."""
    try:
        with transaction.atomic():
            part = BatchRunPart.objects.select_for_update().select_related("run").filter(pk=part_id).first()
            if part is None or part.done_at is not None:
                return False  # done already (a second delivery), or the run was deleted
            result = batch_kind(part.run.kind).run_part(run=part.run, params=part.params) or {}
            now = timezone.now()
            BatchRunPart.objects.filter(pk=part.pk).update(done_at=now, result=result, error="",
                                                           attempts=F("attempts") + 1)
            # Concurrent parts queue on the run's row here, so exactly one of them sees the count complete.
            BatchRun.objects.filter(pk=part.run_id).update(parts_done=F("parts_done") + 1, updated_at=now)
            run = BatchRun.objects.get(pk=part.run_id)
            if run.status == BatchRun.Status.FAILED and not run.parts.exclude(pk=part.pk).exclude(error="").exists():
                # This part failed before and has now succeeded: nothing else is wrong with the run.
                BatchRun.objects.filter(pk=run.pk).update(status=BatchRun.Status.RUNNING, error="")
            if run.parts_done == run.parts_total and not run.inline:
                _send(FINISH_TASK, run.pk)
    except Exception as exc:
        _part_failed(part_id, exc)
        raise
    return True


def _part_failed(part_id: int, exc: Exception) -> None:
    error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
    log.exception("batch part %s failed", part_id)
    with transaction.atomic():
        part = BatchRunPart.objects.filter(pk=part_id).first()
        if part is None:
            return
        BatchRunPart.objects.filter(pk=part_id).update(attempts=F("attempts") + 1, error=error)
        BatchRun.objects.filter(pk=part.run_id).update(
            status=BatchRun.Status.FAILED, error=f"batch {part.index}: {error}"[:MAX_ERROR_CHARS], updated_at=timezone.now())


def batch_run_finish(*, run_id: int) -> bool:
    """Run the finishing step once every part is done; True when it ran (False: not ready, or done already)."""
    with transaction.atomic():
        run = BatchRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.status == BatchRun.Status.DONE or run.parts_done < run.parts_total:
            return False
        # Committed at once, so the admin and the progress bar show that the parts are over.
        BatchRun.objects.filter(pk=run_id).update(status=BatchRun.Status.FINISHING, updated_at=timezone.now())
    try:
        with transaction.atomic():
            run = BatchRun.objects.select_for_update().get(pk=run_id)
            if run.status == BatchRun.Status.DONE:
                return False  # a concurrent finish got here first
            results = list(run.parts.order_by("index").values_list("result", flat=True))
            result = batch_kind(run.kind).finish(run=run, results=[r or {} for r in results]) or {}
            BatchRun.objects.filter(pk=run_id).update(status=BatchRun.Status.DONE, result=result, error="",
                                                      finished_at=timezone.now(), updated_at=timezone.now())
    except Exception as exc:
        log.exception("finishing batch run %s failed", run_id)
        BatchRun.objects.filter(pk=run_id).update(status=BatchRun.Status.FAILED, updated_at=timezone.now(),
                                                  error=f"finish: {type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS])
        raise
    return True


WORKER_PING_SECONDS = 1.0


def batch_inline_reason() -> str:
    """Why a command's run must go inline although the workers were asked for ("" when it need not): a run
    that no worker picks up would wait for ever, and the embedded database takes one writer at a time."""
    from django.db import connection

    if connection.vendor == "sqlite":
        return "The embedded SQLite database takes one writer at a time: running the batches in this process."
    try:
        answered = current_app.control.ping(timeout=WORKER_PING_SECONDS, limit=1)
    except Exception:  # noqa: BLE001 - whatever the broker raised, there is no worker to hand the run to
        answered = []
    return "" if answered else "No Celery worker answered: running the batches in this process (as with --inline)."


def batch_run_wait(*, run: BatchRun, progress: bool = False, timeout: float | None = None,
                   poll_seconds: float = 0.5) -> BatchRun:
    """Wait for a run on the workers to end, drawing its progress; raises BatchRunFailed or TimeoutError."""
    from tqdm import tqdm

    deadline = None if timeout is None else time.monotonic() + timeout
    with tqdm(total=run.parts_total, desc=run.label or run.kind, unit="batch", disable=not progress) as bar:
        while True:
            run.refresh_from_db()
            bar.update(run.parts_done - bar.n)
            if run.status == BatchRun.Status.DONE:
                return run
            if run.status == BatchRun.Status.FAILED:
                raise BatchRunFailed(run)
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{run} did not end within {timeout:.0f}s")
            time.sleep(poll_seconds)


def batch_runs_prune(*, now: dt.datetime | None = None) -> int:
    """Delete the finished runs (and their parts) of each kind past its keep_days; returns the runs deleted."""
    now = now or timezone.now()
    deleted = 0
    for kind in _KINDS.values():
        if kind.keep_days is not None:
            old = BatchRun.objects.filter(kind=kind.name, status=BatchRun.Status.DONE,
                                          finished_at__lt=now - dt.timedelta(days=kind.keep_days))
            deleted += old.delete()[1].get(BatchRun._meta.label, 0)
    return deleted


def batch_runs_resume(*, stale_after: dt.timedelta = dt.timedelta(minutes=20), now: dt.datetime | None = None) -> int:
    """Re-enqueue what a stalled run still needs (its enqueue was refused, a worker was lost): the parts not done
    and, when they all are, the finish. Safe because parts and finish do nothing twice. Returns the tasks sent.

    Runs that failed are left for a person: their error says why, and re-running is a new run."""
    now = now or timezone.now()
    stalled = BatchRun.objects.filter(
        Q(status=BatchRun.Status.RUNNING) | Q(status=BatchRun.Status.FINISHING), inline=False,
        updated_at__lt=now - stale_after)
    sent = 0
    for run in stalled:
        undone = list(run.parts.filter(done_at__isnull=True).values_list("id", flat=True))
        for part_id in undone:
            _send(PART_TASK, part_id)
        if not undone:
            _send(FINISH_TASK, run.pk)
        BatchRun.objects.filter(pk=run.pk).update(updated_at=now)
        sent += len(undone) or 1
    # An inline run lives in the process that started it: if that stopped moving, nobody will finish it.
    BatchRun.objects.filter(Q(status=BatchRun.Status.RUNNING) | Q(status=BatchRun.Status.FINISHING), inline=True,
                            updated_at__lt=now - stale_after).update(
        status=BatchRun.Status.FAILED, updated_at=now, error="the process running it inline stopped")
    return sent
