"""The snapshot refresh as a batch run (issue 18): the same snapshots whether its batches run in one part or
several, inline, on one worker process or on two; a batch run twice changes nothing."""

import datetime as dt
import io

import pytest
from django.core.management import CommandError, call_command

from core.batches import batch_part_run, batch_run_finish, batch_run_wait
from core.models import BatchRun
from core.worker_process import worker_stop
from metrics.models import MetricSnapshot
from metrics.services.periods import months_between
from metrics.services.snapshots import REFRESH_KIND, metrics_refresh, metrics_refresh_start, refresh_plan
from tests.conftest import worker_start
from winback.services.lifecycle import lifecycle_scan

UNTIL = dt.date(2025, 7, 1)
MONTHS = months_between(dt.date(2024, 7, 1), UNTIL)  # 12 months, with the cohort matrix of the 36 before


def _demo(customers: int) -> None:
    call_command("seed_demo", "--customers", str(customers), "--until", str(UNTIL), "--seed", "11", stdout=io.StringIO())
    lifecycle_scan(full=True, now=dt.datetime(2025, 7, 1, tzinfo=dt.timezone.utc))


def _snapshots() -> list[tuple]:
    """Every stored figure, without when it was computed."""
    return sorted(MetricSnapshot.objects.values_list("metric", "start", "end", "value", "numerator", "denominator", "extra"),
                  key=lambda row: row[:3])


@pytest.fixture
def demo(db):
    _demo(300)


def test_parts_of_customers_give_the_snapshots_of_one_part_and_a_part_run_twice_changes_nothing(demo):
    # Given the snapshots of a refresh in one part
    metrics_refresh(periods=MONTHS)
    one_part = _snapshots()
    assert any(row[0] == "L0" and row[3] > 0 for row in one_part)
    assert any(row[0] == "revenue" and row[3] > 0 for row in one_part)
    assert any(row[0] == "cross_sell_rate" and row[4] for row in one_part)  # the demo has order lines
    MetricSnapshot.objects.all().delete()
    # When the same months are refreshed as a run of 3 batches of customers, inline (and one of order lines and
    # one of the program's tables)
    run = metrics_refresh_start(periods=MONTHS, parts=3, inline=True)
    # Then the run is done, its batches cover every customer once, and the snapshots are the same, exactly
    assert (run.kind, run.status, run.parts_done, run.parts_total) == (REFRESH_KIND, "done", 5, 5)
    params = list(run.parts.order_by("index").values_list("params", flat=True))
    assert [p["sums"] for p in params] == [["customers"]] * 3 + [["lines"], ["program"]]
    bounds = [(p["lo"], p["hi"]) for p in params[:3]]
    assert bounds[0][0] is None and bounds[-1][1] is None and None not in [lo for lo, _ in bounds[1:]]
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    assert all((p["lo"], p["hi"]) == (None, None) for p in params[3:])
    assert _snapshots() == one_part
    assert run.result == {"rows": len(one_part), "months": len(MONTHS)}
    # When a batch is run again by force (its task delivered twice after its mark was lost), and twice
    part = run.parts.get(index=1)
    first_result = part.result
    for _ in range(2):
        part.done_at = None
        part.save(update_fields=["done_at"])
        BatchRun.objects.filter(pk=run.pk).update(parts_done=4)
        assert batch_part_run(part_id=part.pk)
    # Then it wrote nothing (a batch only sums: its result is its work) and its result is the same
    assert _snapshots() == one_part
    part.refresh_from_db()
    assert part.result == first_result and part.attempts == 3
    # And a part already done does nothing; the finish run again replaces the rows rather than adding any
    assert not batch_part_run(part_id=part.pk)
    BatchRun.objects.filter(pk=run.pk).update(status="finishing")
    assert batch_run_finish(run_id=run.pk)
    assert _snapshots() == one_part


def test_a_refresh_plan_refuses_what_is_not_a_month_and_splits_no_more_than_the_customers(demo):
    from metrics.services.periods import Period

    with pytest.raises(ValueError, match="calendar month"):
        refresh_plan(periods=[Period(dt.date(2025, 1, 1), dt.date(2025, 4, 1))])
    params, parts = refresh_plan(periods=MONTHS, parts=1000)  # more parts than customers: the customers in one
    assert parts == [{"lo": None, "hi": None, "sums": [sums]} for sums in ("customers", "lines", "program")]
    assert refresh_plan(periods=MONTHS)[1] == [{"lo": None, "hi": None, "sums": ["customers", "lines", "program"]}]
    assert params["months"][0] == "2024-07-01" and len(params["months"]) == 12
    assert not BatchRun.objects.filter(kind=REFRESH_KIND).exists()


def test_the_command_runs_inline_in_batches_and_refuses_bad_arguments(demo):
    out = io.StringIO()
    call_command("metrics_refresh", "--start", "2025-01-01", "--end", "2025-07-01", "--parts", "2", "--inline",
                 "--no-progress", stdout=out)
    run = BatchRun.objects.get(kind=REFRESH_KIND)
    assert (run.status, run.parts_total, run.inline) == ("done", 4, True)
    assert f"{run.result['rows']} snapshot rows for 6 months (2025-01 .. 2025-06) in 4 batches inline." in out.getvalue()
    assert MetricSnapshot.objects.filter(metric="churn_rate").count() == 6
    for bad in (["--months", "0"], ["--parts", "0"], ["--start", "2025-01-01"]):
        with pytest.raises(CommandError):
            call_command("metrics_refresh", *bad, "--inline", stdout=io.StringIO())
    assert BatchRun.objects.filter(kind=REFRESH_KIND).count() == 1


@pytest.mark.postgres
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_inline_one_worker_and_two_workers_give_the_same_snapshots(transactional_db):
    from config.celery import app

    _demo(200)
    # Given the snapshots of a refresh in 4 batches of customers (and 2 more) run inline
    metrics_refresh_start(periods=MONTHS, parts=4, inline=True)
    inline = _snapshots()
    assert len(inline) > 1000
    app.control.purge()
    for processes in (1, 2):
        MetricSnapshot.objects.all().delete()
        worker = worker_start(name=f"refresh{processes}", concurrency=processes)
        try:
            # When the same refresh runs on a worker with that many processes
            run = metrics_refresh_start(periods=MONTHS, parts=4)
            assert not run.inline and run.status == "running"
            run = batch_run_wait(run=run, timeout=180)
        finally:
            worker_stop(worker)
        # Then every batch ran once and the snapshots are the same
        assert (run.status, run.parts_done) == ("done", 6), f"{processes} worker process(es)"
        assert run.parts.filter(attempts=1).count() == 6
        assert _snapshots() == inline, f"{processes} worker process(es)"
