"""An orders import is a batch run (issue 18): one audit record per run and the run's id on each order it
created, the same orders and customer figures inline, on one worker process or on two, and a batch whose
work runs twice adds nothing."""

import hashlib
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from core.batches import BatchKind, BatchRunFailed, batch_kind, batch_kind_register, batch_part_run
from core.models import BatchRun
from core.worker_process import worker_stop
from crm.models import AuditEntry, Customer, Order
from crm.services.audit import SYSTEM, Actor
from crm.services.import_orders import KIND
from crm.services.imports import csv_import
from tests.conftest import worker_start
from tests.crm.test_import_csv import report_rows, write
from tests.factories import CustomerFactory, UserFactory

# Rows of one external_id land in one batch whatever the batch size, so the file's first row of an order
# wins, as it does row by row.
DUPLICATES = (
    "external_id,customer,ordered_at,amount,currency,coupon_code\n"
    "D-1,C-9,2025-01-05T10:00:00Z,5.00,EUR,\n"            # row 2: unknown customer
    "D-1,C-1,2025-01-05T10:00:00Z,5.00,EUR,\n"            # row 3: the first row of D-1 with a customer: created
    "D-2,C-2,2025-01-06T10:00:00Z,7.00,EUR,A\\B\n"       # row 4: created (a backslash in the coupon)
    "D-1,C-1,2025-01-05T10:00:00Z,5,EUR,\n"               # row 5: the same order again: unchanged
    "D-1,C-1,2025-01-05T10:00:00Z,6.00,EUR,\n"            # row 6: other data than row 3: refused
    " D-3 ,C-2,2025-01-07 10:00,1.5,usd,\n"               # row 7: created (spaces, no offset, lower case)
)


def _orders() -> list[tuple]:
    return sorted(Order.objects.values_list("external_id", "customer__external_id", "ordered_at", "amount",
                                            "currency", "coupon_code"))


def _figures() -> list[tuple]:
    # Not the status: the lifecycle refresh that follows an import (on a worker) moves it on.
    return sorted(Customer.objects.values_list("external_id", "order_count", "total_spent", "last_order_at",
                                               "acquired_at", "history_version"))


@pytest.fixture
def customers(db):
    return CustomerFactory(external_id="C-1"), CustomerFactory(external_id="C-2")


def test_an_orders_import_is_one_run_with_one_audit_record_and_its_id_on_the_orders(tmp_path, customers):
    # Given a file with good rows, bad rows and repeats, and a user who imports it
    user = UserFactory(username="ops")
    path = write(tmp_path, "dups.csv", DUPLICATES)
    report = tmp_path / "errors.csv"
    # When it is imported in batches of one row
    result = csv_import(kind="orders", path=path, actor=Actor.of(user, via="import_csv dups.csv"),
                        report_path=report, batch_size=1)
    # Then the first row of each order with a customer is in, the repeat is unchanged, the others are reported
    assert (result.rows, result.created, result.unchanged, result.rejected) == (6, 3, 1, 2)
    assert [(r, c) for r, c, _ in report_rows(report)] == [(2, "customer"), (6, "external_id")]
    assert "already exists with different data (amount: 5.00 != 6.00)" in report_rows(report)[1][2]
    assert [o[:2] + o[3:] for o in _orders()] == [
        ("D-1", "C-1", 5, "EUR", ""), ("D-2", "C-2", 7, "EUR", "A\\B"), ("D-3", "C-2", 1.5, "USD", "")]
    c1, c2 = (Customer.objects.get(external_id=k) for k in ("C-1", "C-2"))
    assert (c1.order_count, str(c1.total_spent), c1.status) == (1, "5.00", "active")
    assert (c2.order_count, str(c2.total_spent)) == (2, "8.50")
    # ... one run, done, in as many batches as asked for (about one row each), with the file and its hash
    run = BatchRun.objects.get()
    assert (run.kind, run.status, run.inline, run.created_by) == (KIND, "done", True, user)
    assert run.parts_done == run.parts_total >= 3
    assert run.params["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert {k: run.result[k] for k in ("rows", "created", "unchanged", "rejected", "customers")} == {
        "rows": 6, "created": 3, "unchanged": 1, "rejected": 2, "customers": 2}
    # ... no audit row per order, but one for the run: who, the file, its hash, the counts, the rejected rows
    assert not AuditEntry.objects.filter(entity="crm.order").exists()
    record = AuditEntry.objects.get(entity="core.batchrun")
    assert (record.entity_id, record.actor, record.actor_label) == (run.pk, user, "ops via import_csv dups.csv")
    assert record.changes["sha256"] == run.params["sha256"] and record.changes["file"] == "dups.csv"
    assert (record.changes["created"], record.changes["rejected"]) == (3, 2)
    assert [e[:2] for e in record.changes["errors"]] == [[2, "customer"], [6, "external_id"]]
    # ... each order carries the run's id
    assert set(Order.objects.values_list("import_run_id", flat=True)) == {run.pk}


def test_an_imported_orders_admin_page_links_to_its_run(tmp_path, customers, client):
    path = write(tmp_path, "dups.csv", DUPLICATES)
    csv_import(kind="orders", path=path, actor=SYSTEM, report_path=tmp_path / "errors.csv", batch_size=2)
    run, order = BatchRun.objects.get(), Order.objects.get(external_id="D-2")
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    page = client.get(f"/admin/crm/order/{order.pk}/change/").content.decode()
    assert f'href="/admin/core/batchrun/{run.pk}/change/"' in page
    run_page = client.get(f"/admin/core/batchrun/{run.pk}/change/")
    assert run_page.status_code == 200 and b"dups.csv" in run_page.content


def test_a_reimport_adds_nothing_and_writes_no_audit_record(tmp_path, customers):
    path = write(tmp_path, "dups.csv", DUPLICATES)
    csv_import(kind="orders", path=path, actor=SYSTEM, report_path=tmp_path / "e1.csv", batch_size=2)
    orders, figures, audits = _orders(), _figures(), AuditEntry.objects.count()

    again = csv_import(kind="orders", path=path, actor=SYSTEM, report_path=tmp_path / "e2.csv", batch_size=2)

    assert (again.created, again.unchanged, again.rejected) == (0, 4, 2)
    assert (_orders(), _figures(), AuditEntry.objects.count()) == (orders, figures, audits)
    # ... but its run is recorded: who ran which file, and that it changed nothing
    assert BatchRun.objects.order_by("id").last().result["created"] == 0


def test_a_batch_whose_work_runs_twice_adds_nothing(tmp_path, customers):
    # Given the orders kind with each batch's work done twice in a row (as if a redelivered task ran it
    # again before its first "done" mark was seen)
    real = batch_kind(KIND)
    seconds: list[dict] = []

    def twice(*, run: BatchRun, params: dict) -> dict:
        first = real.run_part(run=run, params=params)
        seconds.append(real.run_part(run=run, params=params))
        return first

    batch_kind_register(BatchKind(name=KIND, run_part=twice, finish=real.finish))
    try:
        # When a file is imported in batches
        path = write(tmp_path, "dups.csv", DUPLICATES)
        result = csv_import(kind="orders", path=path, actor=SYSTEM, report_path=tmp_path / "e.csv", batch_size=2)
    finally:
        batch_kind_register(real)
    # Then every second run created nothing, and orders and figures are counted once
    assert seconds and all(s["created"] == 0 for s in seconds)
    assert result.created == Order.objects.count() == 3
    assert sorted(Customer.objects.values_list("order_count", flat=True)) == [1, 2]
    # ... and a batch delivered again after its mark finds itself done
    run = BatchRun.objects.get()
    assert not any(batch_part_run(part_id=pk) for pk in run.parts.values_list("id", flat=True))
    assert Order.objects.count() == 3


def test_the_command_runs_inline_without_a_worker_and_says_so(tmp_path, customers, capsys):
    path = write(tmp_path, "dups.csv", DUPLICATES.replace("D-1,C-9", "D-1,C-1"))
    with pytest.raises(Exception, match="1 row"):  # row 6 conflicts
        call_command("import_csv", "orders", str(path), "--no-progress", "--batch-size", "2")
    out = capsys.readouterr()
    assert "3 created" in out.out
    assert BatchRun.objects.get().inline
    if connection.vendor == "postgresql":
        assert "No Celery worker answered" in out.err


def _bigger_file(tmp_path: Path) -> Path:
    # 60 rows over 6 customers: repeats, conflicts and unknown customers spread over the batches.
    lines = ["external_id,customer,ordered_at,amount,currency,coupon_code"]
    for i in range(60):
        customer = "C-X" if i % 17 == 0 else f"C-{i % 6}"
        external_id = f"O-{i % 45}"  # rows 47..61 repeat earlier orders, some with other data
        amount = f"{(i % 45) + (0.5 if i >= 45 and i % 2 else 0):.2f}"
        lines.append(f"{external_id},{customer if i < 45 else f'C-{(i - 45) % 6}'},2025-03-{1 + i % 28:02d}T10:00:00Z,"
                     f"{amount},EUR,{'W10' if i % 5 == 0 else ''}")
    return write(tmp_path, "big.csv", "\n".join(lines) + "\n")


@pytest.mark.postgres
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_inline_one_worker_and_two_workers_import_the_same_orders_and_figures(tmp_path):
    from config.celery import app

    for i in range(6):
        CustomerFactory(external_id=f"C-{i}")
    path = _bigger_file(tmp_path)

    def forget() -> None:
        Order.objects.all().delete()
        AuditEntry.objects.filter(entity="core.batchrun").delete()
        Customer.objects.update(order_count=0, total_spent=0, last_order_at=None, acquired_at=None, status="prospect",
                                history_version=0)

    def outcome(result, report: Path) -> tuple:
        return (_orders(), _figures(), (result.rows, result.created, result.unchanged, result.rejected),
                report_rows(report), AuditEntry.objects.filter(entity="core.batchrun").count())

    # Given the outcome of the import inline, in batches of about 8 rows
    inline = outcome(csv_import(kind="orders", path=path, actor=SYSTEM, report_path=tmp_path / "inline.csv",
                                batch_size=8), tmp_path / "inline.csv")
    assert inline[2][1] > 30 and inline[2][3] > 3 and inline[4] == 1
    app.control.purge()
    for processes in (1, 2):
        forget()
        worker = worker_start(name=f"import{processes}", concurrency=processes)
        try:
            # When the same file is imported on a worker with that many processes, then again
            report = tmp_path / f"workers{processes}.csv"
            first = outcome(csv_import(kind="orders", path=path, actor=SYSTEM, report_path=report, batch_size=8,
                                       inline=False), report)
            again = csv_import(kind="orders", path=path, actor=SYSTEM, report_path=tmp_path / "again.csv",
                               batch_size=8, inline=False)
        finally:
            worker_stop(worker)
        # Then the orders, the figures, the counts, the report and the one audit record are the same
        assert first == inline, f"{processes} worker process(es)"
        run = BatchRun.objects.filter(inline=False).order_by("id").first()
        assert (run.status, run.parts_done) == ("done", run.parts_total) and run.parts_total > 4
        # ... and the second import added nothing
        assert (again.created, again.unchanged) == (0, inline[2][1] + inline[2][2])
        assert (_orders(), _figures()) == inline[:2]
        BatchRun.objects.filter(inline=False).delete()
    # ... and no staging table is left behind
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_class WHERE relname LIKE 'crm_import_%%'")
        assert cursor.fetchone()[0] == 0


@pytest.mark.postgres
def test_the_staging_tables_are_gone_after_a_run(tmp_path, customers):
    csv_import(kind="orders", path=write(tmp_path, "dups.csv", DUPLICATES), actor=SYSTEM,
               report_path=tmp_path / "e.csv", batch_size=2)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_class WHERE relname LIKE 'crm_import_%%'")
        assert cursor.fetchone()[0] == 0


def test_a_failed_run_keeps_the_orders_of_its_batches_done_with_their_figures(tmp_path, customers):
    # Given the orders kind failing on its second batch
    real = batch_kind(KIND)
    calls: list[int] = []

    def fails_second(*, run: BatchRun, params: dict) -> dict:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("the database went away")
        return real.run_part(run=run, params=params)

    batch_kind_register(BatchKind(name=KIND, run_part=fails_second, finish=real.finish))
    path = write(tmp_path, "orders.csv", "external_id,customer,ordered_at,amount\n"
                 + "".join(f"F-{i:03d},C-{1 + i % 2},2025-04-01T10:00:00Z,{1 + i % 7}.00\n" for i in range(400)))
    try:
        # When it is imported in batches of 200 rows and fails
        with pytest.raises(BatchRunFailed, match="the database went away"):
            csv_import(kind="orders", path=path, actor=SYSTEM, report_path=tmp_path / "e.csv", batch_size=200)
    finally:
        batch_kind_register(real)
    # Then the first batch's orders are in, with their customers' figures, and the run says it failed
    run = BatchRun.objects.get()
    assert (run.status, run.parts_done) == ("failed", 1)
    done = run.parts.get(index=0).result["created"]
    assert 0 < done == Order.objects.count() < 400
    assert not AuditEntry.objects.exists()
    assert _figures_match_orders()
    # ... and importing the file again adds the rest, each order and figure once
    again = csv_import(kind="orders", path=path, actor=SYSTEM, report_path=tmp_path / "e2.csv", batch_size=200)
    assert (again.created, again.unchanged) == (400 - done, done)
    assert Order.objects.count() == 400 and _figures_match_orders()


def _figures_match_orders() -> bool:
    stored = {c.pk: (c.order_count, c.total_spent) for c in Customer.objects.all()}
    counted = {c.pk: (c.orders.count(), sum((o.amount for o in c.orders.all()), Decimal("0")))
               for c in Customer.objects.all()}
    return stored == counted
