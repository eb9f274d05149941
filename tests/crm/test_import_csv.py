import csv
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from crm.models import AuditEntry, Complaint, Customer, Feedback, Order
from crm.services.audit import SYSTEM
from crm.services.imports import ImportFileError, csv_import
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def write(tmp_path: Path, name: str, text: str, bom: bool = False) -> Path:
    path = tmp_path / name
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def report_rows(path: Path) -> list[tuple[int, str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return [(int(r["row"]), r["column"], r["reason"]) for r in csv.DictReader(f)]


ORDERS = (
    "external_id,customer,ordered_at,amount,currency,coupon_code\n"
    "O-1,C-1,2025-01-05T10:00:00+01:00,19.90,EUR,\n"        # row 2: good
    "O-2,C-1,2025-02-05,-4.00,EUR,\n"                        # row 3: negative amount
    "O-3,C-2,2025-02-07T09:00:00Z,5,eur,\"WELCOME,10\"\n"    # row 4: good (lower-case currency, comma in a quoted field)
    "O-4,C-9,2025-02-08T09:00:00Z,5,EUR,\n"                  # row 5: unknown customer
    "O-5,C-1,not a date,5,EUR,\n"                            # row 6: bad date
    "O-6,C-1,2025-03-01T00:00:00Z,7.5\n"                     # row 7: too few fields
    "O-1,C-1,2025-01-05T10:00:00+01:00,99.00,EUR,\n"         # row 8: conflicts with row 2
    "O-7,C-2,2025-03-02T00:00:00Z,12.00,EUR,\n"              # row 9: good
)


@pytest.fixture
def customers():
    return CustomerFactory(external_id="C-1"), CustomerFactory(external_id="C-2")


@pytest.mark.parametrize("batch_size", [1, 2, 5000])
def test_orders_import_keeps_good_rows_and_reports_each_bad_one(tmp_path, customers, batch_size):
    path = write(tmp_path, "orders.csv", ORDERS, bom=True)
    report = tmp_path / "errors.csv"

    result = csv_import(kind="orders", path=path, actor=SYSTEM, report_path=report, batch_size=batch_size)

    assert sorted(Order.objects.values_list("external_id", flat=True)) == ["O-1", "O-3", "O-7"]
    assert (result.rows, result.created, result.rejected) == (8, 3, 5)
    rows = report_rows(report)
    assert [(r, c) for r, c, _ in rows] == [(3, "amount"), (5, "customer"), (6, "ordered_at"), (7, ""), (8, "external_id")]
    reasons = dict(((r, c), why) for r, c, why in rows)
    assert "cannot be negative" in reasons[(3, "amount")]
    assert "No customer with external_id 'C-9'" in reasons[(5, "customer")]
    assert "Expected 6 fields, found 4" in reasons[(7, "")]
    assert "already exists with different data" in reasons[(8, "external_id")]
    assert Order.objects.get(external_id="O-3").coupon_code == "WELCOME,10"
    assert Order.objects.get(external_id="O-3").currency == "EUR"
    c1, c2 = (Customer.objects.get(external_id=k) for k in ("C-1", "C-2"))
    assert (c1.order_count, str(c1.total_spent)) == (1, "19.90")
    assert (c2.order_count, str(c2.total_spent)) == (2, "17.00")


def test_reimporting_the_same_file_adds_nothing(tmp_path, customers):
    path = write(tmp_path, "orders.csv", ORDERS)
    csv_import(kind="orders", path=path, actor=SYSTEM, report_path=tmp_path / "e1.csv", batch_size=2)
    orders, audits = Order.objects.count(), AuditEntry.objects.count()
    totals = list(Customer.objects.order_by("id").values_list("order_count", "total_spent"))

    again = csv_import(kind="orders", path=path, actor=SYSTEM, report_path=tmp_path / "e2.csv", batch_size=2)

    assert (again.created, again.unchanged) == (0, 3)
    assert (Order.objects.count(), AuditEntry.objects.count()) == (orders, audits)
    assert list(Customer.objects.order_by("id").values_list("order_count", "total_spent")) == totals


def test_a_bad_header_imports_nothing_and_says_why(tmp_path, customers):
    path = write(tmp_path, "orders.csv", "external_id,customer,when,amount\nO-1,C-1,2025-01-01,1\n")
    with pytest.raises(ImportFileError) as exc:
        csv_import(kind="orders", path=path, actor=SYSTEM, report_path=tmp_path / "e.csv")
    assert "missing required column(s) ordered_at" in str(exc.value)
    assert "unknown column(s) when" in str(exc.value)
    assert not Order.objects.exists()


def test_optional_columns_may_be_absent(tmp_path, customers):
    path = write(tmp_path, "orders.csv", "customer,amount,external_id,ordered_at\nC-1,3.00,O-1,2025-01-01\n")
    result = csv_import(kind="orders", path=path, actor=SYSTEM, report_path=tmp_path / "e.csv")
    assert result.created == 1
    assert Order.objects.get().currency == "EUR"


def test_customers_import_with_quoted_newlines_then_update_on_reimport(tmp_path):
    text = (
        "external_id,name,email,phone,locale\n"
        'C-1,"Lee, Ann",ann@example.com,+33612345678,fr\n'
        '"C-2","Multi\nLine Name",b@example.com,,ar\n'
        "C-3,Bad Phone,c@example.com,12345,en\n"
        "C-4,,d@example.com,,en\n"
    )
    path = write(tmp_path, "customers.csv", text, bom=True)
    result = csv_import(kind="customers", path=path, actor=SYSTEM, report_path=tmp_path / "e.csv")
    assert (result.created, result.rejected) == (2, 2)
    assert Customer.objects.get(external_id="C-1").name == "Lee, Ann"
    assert Customer.objects.get(external_id="C-1").timezone == "Europe/Paris"
    assert Customer.objects.get(external_id="C-2").name == "Multi\nLine Name"
    assert [(r, c) for r, c, _ in report_rows(tmp_path / "e.csv")] == [(4, "phone"), (5, "name")]

    again = csv_import(kind="customers", path=path, actor=SYSTEM, report_path=tmp_path / "e2.csv")
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)

    path.write_text(text.replace("ann@example.com", "ann@new.example.com"))
    changed = csv_import(kind="customers", path=path, actor=SYSTEM, report_path=tmp_path / "e3.csv")
    assert (changed.created, changed.updated, changed.unchanged) == (0, 1, 1)
    assert Customer.objects.get(external_id="C-1").email == "ann@new.example.com"
    assert AuditEntry.objects.filter(entity="crm.customer", action="update").count() == 1


def test_complaints_and_feedback_import(tmp_path, customers):
    complaints = write(tmp_path, "complaints.csv",
        "external_id,customer,opened_at,summary,category,status,resolved_at\n"
        "K-1,C-1,2025-01-01T10:00:00Z,Late parcel,delivery,open,\n"
        "K-2,C-2,2025-01-02T10:00:00Z,Broken,product,resolved,2025-01-03T10:00:00Z\n"
        "K-3,C-2,2025-01-02T10:00:00Z,Wrong bill,billing,resolved,2024-12-01T00:00:00Z\n")
    result = csv_import(kind="complaints", path=complaints, actor=SYSTEM, report_path=tmp_path / "e.csv")
    assert (result.created, result.rejected) == (2, 1)
    assert report_rows(tmp_path / "e.csv")[0][:2] == (4, "resolved_at")
    assert csv_import(kind="complaints", path=complaints, actor=SYSTEM, report_path=tmp_path / "e.csv").created == 0
    assert Complaint.objects.count() == 2

    feedback = write(tmp_path, "feedback.csv",
        "external_id,customer,kind,score,responded_at,comment\n"
        "F-1,C-1,nps,9,2025-01-01T00:00:00Z,Great\n"
        "F-2,C-1,csat,6,2025-01-01T00:00:00Z,\n"
        "F-3,C-2,ces,3,2025-01-01T00:00:00Z,\n")
    result = csv_import(kind="feedback", path=feedback, actor=SYSTEM, report_path=tmp_path / "f.csv")
    assert (result.created, result.rejected) == (2, 1)
    assert report_rows(tmp_path / "f.csv")[0][:2] == (3, "score")
    feedback.write_text(feedback.read_text().replace("F-1,C-1,nps,9", "F-1,C-1,nps,3"))
    changed = csv_import(kind="feedback", path=feedback, actor=SYSTEM, report_path=tmp_path / "f2.csv")
    assert changed.created == 0
    assert any("cannot change" in why for _, _, why in report_rows(tmp_path / "f2.csv"))
    assert Feedback.objects.get(external_id="F-1").score == 9


def test_command_reports_and_exits_nonzero_on_rejected_rows(tmp_path, customers, capsys):
    path = write(tmp_path, "orders.csv", ORDERS)
    with pytest.raises(CommandError) as exc:
        call_command("import_csv", "orders", str(path), "--no-progress")
    assert "5 row(s) rejected" in str(exc.value)
    assert (tmp_path / "orders.csv.errors.csv").exists()
    assert "3 created" in capsys.readouterr().out


def test_command_refuses_an_unknown_kind_and_a_missing_file(tmp_path):
    with pytest.raises(CommandError):
        call_command("import_csv", "invoices", str(tmp_path / "x.csv"))
    with pytest.raises(CommandError, match="No such file"):
        call_command("import_csv", "orders", str(tmp_path / "missing.csv"))


def test_a_row_with_bytes_that_are_not_utf8_is_reported_on_its_own_row_and_the_rest_is_imported(tmp_path, customers):
    # Given an orders file whose third row was typed in Latin-1 (é as 0xE9) between good rows
    path = tmp_path / "orders.csv"
    path.write_bytes(
        b"external_id,customer,ordered_at,amount,currency,coupon_code\n"
        b"O-1,C-1,2025-01-05T10:00:00Z,19.90,EUR,\n"
        b"O-2,C-1,2025-01-06T10:00:00Z,5.00,EUR,CAF\xc9\n"
        b"O-3,C-2,2025-01-07T10:00:00Z,7.00,EUR,\n"
    )
    report = tmp_path / "errors.csv"
    # When it is imported (in batches of one, so the bad row is in a batch of its own and among others)
    result = csv_import(kind="orders", path=path, actor=SYSTEM, report_path=report, batch_size=2)
    # Then the good rows are in, and the report names row 3 and why
    assert sorted(Order.objects.values_list("external_id", flat=True)) == ["O-1", "O-3"]
    assert (result.created, result.rejected) == (2, 1)
    [(row, column, reason)] = report_rows(report)
    assert (row, column) == (3, "") and "Not UTF-8" in reason and "coupon_code" in reason


def test_a_nul_byte_in_a_field_rejects_its_row_only(tmp_path, customers):
    # Given a batch whose middle row holds a NUL character (PostgreSQL text cannot store one)
    path = write(tmp_path, "orders.csv", "external_id,customer,ordered_at,amount,currency,coupon_code\n"
                 "O-1,C-1,2025-01-05T10:00:00Z,19.90,EUR,\n"
                 "O-2,C-1,2025-01-06T10:00:00Z,5.00,EUR,WEL\x00COME\n"
                 "O-3,C-2,2025-01-07T10:00:00Z,7.00,EUR,\n")
    report = tmp_path / "errors.csv"
    # When it is imported in one batch
    result = csv_import(kind="orders", path=path, actor=SYSTEM, report_path=report)
    # Then the good rows of that batch are in, and the bad one is reported on its row
    assert sorted(Order.objects.values_list("external_id", flat=True)) == ["O-1", "O-3"]
    assert result.rejected == 1
    [(row, column, reason)] = report_rows(report)
    assert (row, column) == (3, "coupon_code") and "NUL" in reason
