"""A scan's batches give the same events, cases and statuses inline, on one worker process or on two, and a
batch run twice changes nothing (issue 18)."""

import datetime as dt

import pytest

from core.batches import batch_part_run, batch_run_wait
from core.models import BatchRun
from crm.models import Customer
from core.worker_process import worker_stop
from tests.conftest import worker_start
from tests.winback.conftest import customer_with_orders, day
from winback.models import CaseEvent, LifecycleEvent, LifecycleScanState, WinbackCase
from winback.services.lifecycle import lifecycle_scan, lifecycle_scan_start, scan_result_of
from winback.services.policy import policy_change

NOW = day(400)


def _customers() -> None:
    # Lapsed one-time buyers, regulars, returners, an active one, a prospect: 5 kinds x 6 = 30 customers.
    for i in range(6):
        customer_with_orders([i])
        customer_with_orders([0, 10, 20, 30 + i])
        customer_with_orders([0, 200 + i])
        customer_with_orders([390 + i / 10])
        customer_with_orders([])


def _state() -> tuple:
    # The holdout draw is random per case (stored, never redrawn), so it is not compared.
    return (
        sorted(LifecycleEvent.objects.values_list("customer_id", "kind", "occurred_at")),
        sorted(WinbackCase.objects.values_list("customer_id", "lapse_event__kind", "lapsed_at", "status")),
        sorted(Customer.objects.values_list("id", "status", "lifecycle_due_at")),
        sorted(CaseEvent.objects.values_list("case__customer_id", "kind", "at")),
    )


def _forget() -> None:
    """Back to before any scan: no events, no cases, the customers as the import left them."""
    CaseEvent.objects.all().delete()
    WinbackCase.objects.all().delete()
    LifecycleEvent.objects.all().delete()
    Customer.objects.update(status="prospect", lifecycle_due_at=None, lifecycle_version=0)
    LifecycleScanState.objects.all().delete()


@pytest.fixture
def customers(db):
    policy_change(user=None, values={"rule": "rhythm"}, note="the rhythm rule under test")
    _customers()


def test_a_full_scan_is_a_run_of_batches_and_each_batch_run_twice_changes_nothing(customers):
    # When a full scan runs inline in batches of 7 customers
    result = lifecycle_scan(full=True, now=NOW, batch_size=7)
    run = BatchRun.objects.get()
    # Then the run records 5 batches, all done, and the result adds up the batches
    assert (run.kind, run.status, run.parts_done, run.parts_total) == ("lifecycle_scan", "done", 5, 5)
    assert result.customers == Customer.objects.count() == 30
    assert result.events_added == LifecycleEvent.objects.count() > 0
    assert result.cases_opened == WinbackCase.objects.count() > 0
    before = _state()
    # When every batch is run again, by force (as if its task were delivered twice after its mark was lost)
    for part in run.parts.all():
        part.done_at = None
        part.save(update_fields=["done_at"])
        run.parts_done -= 1
    run.save(update_fields=["parts_done"])
    assert all(batch_part_run(part_id=pk) for pk in run.parts.values_list("id", flat=True))
    # Then nothing changed, and the second results say so
    assert _state() == before
    again = [p["events_added"] + p["events_removed"] + p["cases_opened"] + p["statuses_changed"]
             for p in run.parts.values_list("result", flat=True)]
    assert again == [0, 0, 0, 0, 0]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_inline_one_worker_and_two_workers_give_the_same_events_cases_and_statuses(transactional_db):
    from config.celery import app

    policy_change(user=None, values={"rule": "rhythm"}, note="the rhythm rule under test")
    _customers()
    # Given the result of a full scan inline
    lifecycle_scan(full=True, now=NOW, batch_size=4)
    inline = _state()
    assert inline[0] and inline[1]
    app.control.purge()
    for processes in (1, 2):
        _forget()
        worker = worker_start(name=f"batches{processes}", concurrency=processes)
        try:
            # When the same scan runs on a worker with that many processes
            run = lifecycle_scan_start(full=True, now=NOW, batch_size=4)
            assert not run.inline and run.parts_total == 8
            run = batch_run_wait(run=run, timeout=120)
        finally:
            worker_stop(worker)
        # Then it did the same, every batch once, and recorded the scan
        assert _state() == inline, f"{processes} worker process(es)"
        assert (run.status, run.parts_done) == ("done", 8)
        assert scan_result_of(run=run).customers == 30
        assert LifecycleScanState.objects.get().last_scan_at == NOW


def test_a_second_full_scan_asked_while_one_runs_on_the_workers_joins_it(customers, monkeypatch):
    from core import tasks as core_tasks

    monkeypatch.setattr(core_tasks.batch_part_task, "delay", lambda part_id: None)
    first = lifecycle_scan_start(full=True, now=NOW, batch_size=10)
    second = lifecycle_scan_start(full=True, now=NOW + dt.timedelta(minutes=5), batch_size=10)
    assert second.pk == first.pk
    assert BatchRun.objects.count() == 1
