"""The batch-run framework (core/batches.py): parts, the finish, failures, the resume sweep."""

import datetime as dt

import pytest
from django.utils import timezone

from core import tasks as core_tasks
from core.batches import (
    BatchKind, BatchRunFailed, batch_kind_register, batch_part_run, batch_run_finish, batch_run_start,
    batch_run_wait, batch_runs_resume,
)
from core.models import BatchRun, BatchRunPart

pytestmark = pytest.mark.django_db

calls: list[tuple[str, object]] = []
broken: set[int] = set()


def _part(*, run, params):
    if params["n"] in broken:
        raise ValueError(f"row {params['n']} is bad")
    calls.append(("part", params["n"]))
    return {"doubled": params["n"] * 2}


def _finish(*, run, results):
    calls.append(("finish", [r["doubled"] for r in results]))
    return {"sum": sum(r["doubled"] for r in results)}


batch_kind_register(BatchKind(name="test_double", run_part=_part, finish=_finish))


@pytest.fixture(autouse=True)
def fresh_calls():
    calls.clear()
    broken.clear()


@pytest.fixture
def enqueued(monkeypatch):
    """The tasks a run sends to the broker (no worker here)."""
    sent: list[tuple[str, int]] = []
    monkeypatch.setattr(core_tasks.batch_part_task, "delay", lambda part_id: sent.append(("part", part_id)))
    monkeypatch.setattr(core_tasks.batch_finish_task, "delay", lambda run_id: sent.append(("finish", run_id)))
    return sent


def test_an_inline_run_does_every_part_in_order_then_the_finish_once():
    # When a run of three parts runs inline
    run = batch_run_start(kind="test_double", parts=[{"n": 1}, {"n": 2}, {"n": 3}], label="doubling", inline=True)
    # Then each part ran once, in order, and the finish got their results in order
    assert calls == [("part", 1), ("part", 2), ("part", 3), ("finish", [2, 4, 6])]
    assert (run.status, run.parts_done, run.parts_total, run.result) == ("done", 3, 3, {"sum": 12})
    assert run.finished_at is not None
    assert list(run.parts.values_list("result", flat=True)) == [{"doubled": 2}, {"doubled": 4}, {"doubled": 6}]


def test_a_part_or_a_finish_delivered_twice_does_nothing_the_second_time(enqueued):
    # Given a run on the workers whose parts all ran
    run = batch_run_start(kind="test_double", parts=[{"n": 5}, {"n": 6}])
    part_ids = list(run.parts.values_list("id", flat=True))
    assert all(batch_part_run(part_id=i) for i in part_ids)
    # When the first part is delivered again
    assert batch_part_run(part_id=part_ids[0]) is False
    # Then it did not run again and the count did not move; only the last part enqueued the finish
    run.refresh_from_db()
    assert run.parts_done == 2
    assert calls == [("part", 5), ("part", 6)]
    assert enqueued == [("part", part_ids[0]), ("part", part_ids[1]), ("finish", run.pk)]
    # And the finish runs once however often it is delivered
    assert batch_run_finish(run_id=run.pk) is True
    assert batch_run_finish(run_id=run.pk) is False
    assert calls[-1] == ("finish", [10, 12]) and len(calls) == 3


def test_the_finish_waits_for_every_part(enqueued):
    run = batch_run_start(kind="test_double", parts=[{"n": 1}, {"n": 2}])
    batch_part_run(part_id=run.parts.get(index=0).pk)
    assert batch_run_finish(run_id=run.pk) is False
    run.refresh_from_db()
    assert (run.status, run.parts_done) == ("running", 1)
    assert ("finish", run.pk) not in enqueued


def test_a_failing_part_marks_the_run_failed_with_its_reason_and_a_retry_that_succeeds_clears_it(enqueued):
    # Given a part that fails
    broken.add(2)
    run = batch_run_start(kind="test_double", parts=[{"n": 1}, {"n": 2}, {"n": 3}])
    ids = list(run.parts.order_by("index").values_list("id", flat=True))
    batch_part_run(part_id=ids[0])
    with pytest.raises(ValueError):
        batch_part_run(part_id=ids[1])
    batch_part_run(part_id=ids[2])  # one bad batch does not stop the others
    run.refresh_from_db()
    part = BatchRunPart.objects.get(pk=ids[1])
    assert run.status == "failed" and run.error == "batch 1: ValueError: row 2 is bad"
    assert (part.done_at, part.attempts, part.error) == (None, 1, "ValueError: row 2 is bad")
    assert run.parts_done == 2 and ("finish", run.pk) not in enqueued
    with pytest.raises(BatchRunFailed, match="row 2 is bad"):
        batch_run_wait(run=run, timeout=5)
    # When the cause is mended and the part runs again
    broken.clear()
    assert batch_part_run(part_id=ids[1]) is True
    # Then the run is running again, complete, and its finish is enqueued
    run.refresh_from_db()
    assert (run.status, run.error, run.parts_done) == ("running", "", 3)
    assert enqueued[-1] == ("finish", run.pk)
    assert BatchRunPart.objects.get(pk=ids[1]).attempts == 2


def test_an_inline_run_that_fails_raises_and_keeps_the_reason():
    broken.add(1)
    with pytest.raises(BatchRunFailed, match="row 1 is bad") as failure:
        batch_run_start(kind="test_double", parts=[{"n": 1}, {"n": 2}], inline=True)
    run = failure.value.run
    assert run.status == "failed" and run.parts_done == 0
    assert ("finish", [4]) not in calls  # the finish never ran on a partial run


def test_an_unknown_kind_is_refused_before_anything_is_written():
    with pytest.raises(LookupError, match="no batch kind 'nope'"):
        batch_run_start(kind="nope", parts=[{}])
    assert not BatchRun.objects.exists()


def test_a_run_without_parts_goes_straight_to_its_finish(enqueued):
    run = batch_run_start(kind="test_double", parts=[])
    assert enqueued == [("finish", run.pk)]
    assert batch_run_finish(run_id=run.pk) is True
    run.refresh_from_db()
    assert (run.status, run.result) == ("done", {"sum": 0})


def test_the_resume_sweep_resends_what_a_stalled_run_still_needs(enqueued):
    # Given a run whose second part never reached a worker, and that has not moved for half an hour
    run = batch_run_start(kind="test_double", parts=[{"n": 1}, {"n": 2}])
    first, second = run.parts.order_by("index").values_list("id", flat=True)
    batch_part_run(part_id=first)
    later = timezone.now() + dt.timedelta(minutes=30)
    enqueued.clear()
    # When the sweep runs
    sent = batch_runs_resume(now=later)
    # Then the missing part is sent again (and nothing else); a run that moved recently is left alone
    assert (sent, enqueued) == (1, [("part", second)])
    assert batch_runs_resume(now=later) == 0
    # And once every part is done but the finish was lost, the finish is sent again
    batch_part_run(part_id=second)
    enqueued.clear()
    assert batch_runs_resume(now=later + dt.timedelta(hours=1)) == 1
    assert enqueued == [("finish", run.pk)]


def test_an_inline_run_whose_process_stopped_is_marked_failed_by_the_sweep():
    run = BatchRun.objects.create(kind="test_double", parts_total=2, inline=True)
    batch_runs_resume(now=timezone.now() + dt.timedelta(hours=1))
    run.refresh_from_db()
    assert (run.status, run.error) == ("failed", "the process running it inline stopped")


def test_waiting_on_a_run_that_does_not_move_times_out(enqueued):
    run = batch_run_start(kind="test_double", parts=[{"n": 1}])
    with pytest.raises(TimeoutError):
        batch_run_wait(run=run, timeout=0.3, poll_seconds=0.1)


def test_the_database_holds_the_count_to_the_total():
    from django.db import IntegrityError, transaction

    run = BatchRun.objects.create(kind="test_double", parts_total=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        BatchRun.objects.filter(pk=run.pk).update(parts_done=2)


def test_a_command_asked_for_the_workers_runs_inline_when_none_answers_and_says_why(monkeypatch):
    import io

    from django.core.management import call_command
    from django.db import connection

    from config.celery import app

    # Given no worker answering (on SQLite the embedded database is the reason, whatever answers)
    monkeypatch.setattr(app.control, "ping", lambda **kwargs: [])
    err = io.StringIO()
    # When a full scan is asked for without --inline
    call_command("winback_scan", "--full", "--no-progress", stdout=io.StringIO(), stderr=err)
    # Then it ran in this process, finished, and said why
    run = BatchRun.objects.get()
    assert (run.inline, run.status) == (True, "done")
    expected = "takes one writer at a time" if connection.vendor == "sqlite" else "No Celery worker answered"
    assert expected in err.getvalue()


def test_the_workers_are_used_when_one_answers(monkeypatch, enqueued):
    from django.db import connection

    from config.celery import app
    from core.batches import batch_inline_reason

    monkeypatch.setattr(app.control, "ping", lambda **kwargs: [{"worker@host": {"ok": "pong"}}])
    assert batch_inline_reason() == ("" if connection.vendor != "sqlite" else
                                     "The embedded SQLite database takes one writer at a time: running the batches in this process.")


def test_finished_runs_of_a_kind_with_keep_days_are_pruned_and_the_others_kept():
    from core.batches import batch_runs_prune

    batch_kind_register(BatchKind(name="test_kept_a_week", run_part=_part, finish=_finish, keep_days=7))
    now = timezone.now()
    old = BatchRun.objects.create(kind="test_kept_a_week", status="done", finished_at=now - dt.timedelta(days=8))
    BatchRunPart.objects.create(run=old, index=0)
    recent = BatchRun.objects.create(kind="test_kept_a_week", status="done", finished_at=now - dt.timedelta(days=6))
    failed = BatchRun.objects.create(kind="test_kept_a_week", status="failed", finished_at=now - dt.timedelta(days=30))
    kept_forever = BatchRun.objects.create(kind="test_double", status="done", finished_at=now - dt.timedelta(days=900))
    assert batch_runs_prune(now=now) == 1
    assert set(BatchRun.objects.values_list("pk", flat=True)) == {recent.pk, failed.pk, kept_forever.pk}
    assert not BatchRunPart.objects.filter(run_id=old.pk).exists()


def test_a_fresh_process_can_send_the_batch_tasks():
    """A command or the web sends parts by name: the tasks must be registered without a worker's autodiscovery
    (this test process imported core.tasks itself, so a fresh one is asked)."""
    import os
    import subprocess
    import sys

    from django.conf import settings

    code = ("import django; django.setup(); from celery import current_app;"
            " print(sorted(n for n in current_app.tasks if n.startswith('core.batch')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=settings.BASE_DIR,
                         env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}, check=True)
    assert out.stdout.strip() == "['core.batch_finish', 'core.batch_part', 'core.batch_runs_resume']"
