"""Order lines (issue 17 point 2): by the API, by the order_lines import, on the timeline, in the demo."""

import csv
import datetime as dt
import io
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Count, Sum
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils.html import strip_tags

from crm.models import Customer, Order, OrderLine
from crm.selectors import customer_timeline
from crm.services.audit import SYSTEM
from crm.services.demo_data import DEMO_CATALOGUE, demo_order_lines
from crm.services.imports import csv_import
from crm.services.orders import OrderInput, OrderLineInput, orders_insert
from tests.factories import CustomerFactory, OrderFactory, OrderLineFactory

pytestmark = pytest.mark.django_db

TEA = {"product_id": "P-TEA", "product_name": "Tea", "category": "Drinks", "quantity": 2, "amount": "12.00"}
MUG = {"product_id": "P-MUG", "product_name": "Mug", "category": "Kitchen", "quantity": 1, "amount": "18.00"}


def order(external_id: str = "O-1", amount: str = "30.00", **extra) -> dict:
    return {"external_id": external_id, "customer": "C-1", "ordered_at": "2025-03-01T10:00:00Z", "amount": amount,
            **extra}


def stored_lines(external_id: str) -> list[tuple]:
    return list(OrderLine.objects.filter(order__external_id=external_id).order_by("position").values_list(
        "position", "product_id", "product_name", "category", "quantity", "amount"))


@pytest.fixture
def customer() -> Customer:
    return CustomerFactory(external_id="C-1")


# --- API -------------------------------------------------------------------------------------------------

def test_an_order_with_lines_is_stored_with_them_numbered_in_the_given_order_and_shown(api, customer):
    # When an order of 30.00 is posted with a tea line of 12.00 and a mug line of 18.00
    response = api.post("/api/orders/", order(lines=[TEA, MUG]), format="json")

    # Then it is created with both lines, positions 1 and 2 as given
    assert response.status_code == 201, response.data
    assert stored_lines("O-1") == [(1, "P-TEA", "Tea", "Drinks", 2, Decimal("12.00")),
                                   (2, "P-MUG", "Mug", "Kitchen", 1, Decimal("18.00"))]
    # And the customer's figures moved by the order's amount once
    customer.refresh_from_db()
    assert (customer.order_count, customer.total_spent) == (1, Decimal("30.00"))
    # And the answer and a later GET show the lines
    assert [(line["position"], line["product_id"], line["amount"]) for line in response.data["lines"]] == [
        (1, "P-TEA", "12.00"), (2, "P-MUG", "18.00")]
    shown = api.get("/api/orders/O-1/").data
    assert shown["lines"] == response.data["lines"]
    assert api.get("/api/orders/").data["results"][0]["lines"] == response.data["lines"]


def test_an_order_whose_lines_do_not_sum_to_its_amount_is_refused_naming_both_sums(api, customer):
    # When an order of 32.50 is posted with lines summing to 30.00
    response = api.post("/api/orders/", order(amount="32.50", lines=[TEA, MUG]), format="json")

    # Then it is refused on its lines, the message naming both sums, and nothing is written
    assert response.status_code == 400, response.data
    [error] = response.data["errors"]
    assert (error["field"], error["code"]) == ("lines", "lines_sum")
    assert "30.00" in error["message"] and "32.50" in error["message"]
    assert not Order.objects.exists() and not OrderLine.objects.exists()
    customer.refresh_from_db()
    assert customer.order_count == 0


def test_a_list_with_one_bad_sum_writes_nothing(api, customer):
    # Given a list of two orders, the second one's lines one cent short
    payload = [order("O-1", lines=[TEA, MUG]), order("O-2", amount="30.01", lines=[TEA, MUG])]

    # When it is posted
    response = api.post("/api/orders/", payload, format="json")

    # Then the second is named and neither order nor any line is written
    assert response.status_code == 400
    assert [(e["index"], e["field"]) for e in response.data["errors"]] == [(1, "lines")]
    assert not Order.objects.exists() and not OrderLine.objects.exists()


@pytest.mark.parametrize(("line", "field"), [
    ({**TEA, "quantity": 0}, "lines.2.quantity"),
    ({**TEA, "quantity": 100_001}, "lines.2.quantity"),
    ({**TEA, "amount": "-1.00"}, "lines.2.amount"),
    ({**TEA, "amount": "1.005"}, "lines.2.amount"),
    ({**TEA, "amount": "10000000000.00"}, "lines.2.amount"),
    ({**TEA, "product_id": ""}, "lines.2.product_id"),
    ({**TEA, "product_id": "x" * 65}, "lines.2.product_id"),
    ({"product_name": "No id", "amount": "1.00"}, "lines.2.product_id"),
])
def test_a_line_out_of_bounds_is_refused_and_named_by_position(api, customer, line, field):
    # When the second line of an order is out of the model's bounds
    response = api.post("/api/orders/", order(lines=[MUG, line]), format="json")

    # Then the order is refused, the error naming that line's field
    assert response.status_code == 400, response.data
    assert field in {e["field"] for e in response.data["errors"]}
    assert not Order.objects.exists()


def test_more_than_500_lines_are_refused(api, customer):
    # Given an order of 501 lines of 0.01 (summing to its amount)
    lines = [{"product_id": f"P-{n}", "amount": "0.01"} for n in range(501)]

    # When it is posted
    response = api.post("/api/orders/", order(amount="5.01", lines=lines), format="json")

    # Then it is refused on its lines; 500 are accepted
    assert response.status_code == 400 and response.data["errors"][0]["field"] == "lines"
    response = api.post("/api/orders/", order(amount="5.00", lines=lines[:500]), format="json")
    assert response.status_code == 201 and OrderLine.objects.count() == 500


def test_a_repeat_with_the_same_lines_or_none_is_unchanged_and_with_other_lines_a_conflict(api, customer):
    # Given an order stored with two lines
    first = api.post("/api/orders/", order(lines=[TEA, MUG]), format="json")

    # When it is posted again with the same lines, then without lines
    again = api.post("/api/orders/", order(lines=[TEA, MUG]), format="json")
    bare = api.post("/api/orders/", order(), format="json")

    # Then both answer the stored order, and nothing is added
    assert (first.status_code, again.status_code, bare.status_code) == (201, 200, 200)
    assert again.data == first.data == bare.data
    assert OrderLine.objects.count() == 2

    # When it is posted with other lines (same sum: the mug first), then it is a conflict naming the lines
    swapped = api.post("/api/orders/", order(lines=[MUG, TEA]), format="json")
    assert swapped.status_code == 409
    assert "lines" in swapped.data["detail"]
    assert [p for p, *_ in stored_lines("O-1")] == [1, 2] and stored_lines("O-1")[0][1] == "P-TEA"


def test_the_service_refuses_a_sum_mismatch_from_any_caller(customer):
    # Given an order input whose single line is 1.00 short, as a direct caller might build it
    item = OrderInput("O-9", "C-1", dt.datetime(2025, 3, 1, tzinfo=dt.UTC), Decimal("10.00"), "EUR",
                      lines=(OrderLineInput("P-1", amount=Decimal("9.00")),))

    # When it is inserted leniently
    result = orders_insert(actor=SYSTEM, items=[item], all_or_nothing=False)

    # Then it is an error, not a write
    assert result.created == [] and result.errors[0]["code"] == "lines_sum"
    assert not Order.objects.exists()


# --- Import ----------------------------------------------------------------------------------------------

LINES = (
    "order,product_id,product_name,category,quantity,amount\n"
    "O-1,P-TEA,Tea,Drinks,2,12.00\n"      # row 2: O-1 (30.00) line 1
    "O-1,P-MUG,Mug,Kitchen,1,18.00\n"     # row 3: O-1 line 2: sums to 30.00, written
    "O-2,P-TEA,Tea,Drinks,1,6.00\n"       # row 4: O-2 (20.00) sums to 6.00: refused
    "O-9,P-TEA,Tea,Drinks,1,6.00\n"       # row 5: no such order
    "O-3,P-MUG,Mug,Kitchen,x,10.00\n"     # row 6: bad quantity
    "O-3,P-TEA,Tea,Drinks,1,5.00\n"       # row 7: its order's other line was rejected
    "O-4,P-SET,Gift set,,1,15.00\n"       # row 8: O-4 (15.00), category unknown: written
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "lines.csv"
    path.write_text(text, encoding="utf-8")
    return path


def report_rows(path: Path) -> list[tuple[int, str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return [(int(r["row"]), r["column"], r["reason"]) for r in csv.DictReader(f)]


@pytest.fixture
def orders(customer) -> None:
    for external_id, amount in (("O-1", "30.00"), ("O-2", "20.00"), ("O-3", "15.00"), ("O-4", "15.00")):
        OrderFactory(external_id=external_id, customer=customer, amount=Decimal(amount))


@pytest.mark.parametrize("batch_size", [1, 2, 5000])
def test_the_lines_import_writes_whole_orders_and_reports_each_bad_row(tmp_path, orders, batch_size):
    # When the file is imported, in batches of any size
    report = tmp_path / "errors.csv"
    result = csv_import(kind="order_lines", path=write(tmp_path, LINES), actor=SYSTEM, report_path=report,
                        batch_size=batch_size)

    # Then the orders whose lines are all good and sum to the amount got them, in file order
    assert stored_lines("O-1") == [(1, "P-TEA", "Tea", "Drinks", 2, Decimal("12.00")),
                                   (2, "P-MUG", "Mug", "Kitchen", 1, Decimal("18.00"))]
    assert stored_lines("O-4") == [(1, "P-SET", "Gift set", "", 1, Decimal("15.00"))]
    assert not stored_lines("O-2") and not stored_lines("O-3")
    assert (result.rows, result.created, result.unchanged, result.rejected) == (7, 3, 0, 4)
    # And each rejected row says why
    reasons = {(r, c): why for r, c, why in report_rows(report)}
    assert set(reasons) == {(4, "amount"), (5, "order"), (6, "quantity"), (7, "order")}
    assert "6.00" in reasons[(4, "amount")] and "20.00" in reasons[(4, "amount")]
    assert "No order with external_id 'O-9'" in reasons[(5, "order")]
    assert "another line of order 'O-3' was rejected" in reasons[(7, "order")]


def test_reimporting_the_lines_adds_nothing_and_other_lines_never_replace_them(tmp_path, orders):
    # Given the file imported once
    path = write(tmp_path, LINES)
    csv_import(kind="order_lines", path=path, actor=SYSTEM, report_path=tmp_path / "r1.csv")

    # When it is imported again
    again = csv_import(kind="order_lines", path=path, actor=SYSTEM, report_path=tmp_path / "r2.csv")

    # Then the written rows are unchanged and nothing is added
    assert (again.created, again.unchanged, again.rejected) == (0, 3, 4)
    assert OrderLine.objects.count() == 3

    # When other lines (same sum) come for O-1
    other = write(tmp_path, "order,product_id,amount\nO-1,P-BOX,30.00\n")
    result = csv_import(kind="order_lines", path=other, actor=SYSTEM, report_path=tmp_path / "r3.csv")

    # Then they are refused and the stored lines stay
    assert (result.created, result.rejected) == (0, 1)
    assert "already has other lines" in report_rows(tmp_path / "r3.csv")[0][2]
    assert [line[1] for line in stored_lines("O-1")] == ["P-TEA", "P-MUG"]


def test_the_import_command_knows_the_order_lines_kind(tmp_path, orders):
    out = io.StringIO()
    call_command("import_csv", "order_lines", str(write(tmp_path, "order,product_id,amount\nO-4,P-SET,15.00\n")),
                 "--no-progress", stdout=out)
    assert stored_lines("O-4")[0][1] == "P-SET"


# --- Timeline --------------------------------------------------------------------------------------------

def test_the_timeline_shows_an_orders_lines_as_one_sentence_with_each_line_isolated(customer):
    # Given an order of 30.00 with 2 tea and 1 mug, and one without lines
    with_lines = OrderFactory(external_id="O-1", customer=customer, amount=Decimal("30.00"))
    OrderLineFactory(order=with_lines, position=1, product_name="Tea", quantity=2, amount=Decimal("12.00"))
    OrderLineFactory(order=with_lines, position=2, product_name="Mug", quantity=1, amount=Decimal("18.00"))
    OrderFactory(external_id="O-2", customer=customer, amount=Decimal("5.00"),
                 ordered_at=with_lines.ordered_at.replace(year=2020))

    # When the timeline is read
    entries = customer_timeline(customer_id=customer.pk, kind="orders").entries

    # Then the order with lines lists them in position order, each in its own <bdi>
    texts = [str(e.description) for e in entries]
    assert strip_tags(texts[0]) == "€30.00, order O-1 (2 x Tea; 1 x Mug)"
    assert "<bdi>2 x Tea</bdi>; <bdi>1 x Mug</bdi>" in texts[0]
    assert strip_tags(texts[1]) == "€5.00, order O-2"


def test_lines_add_no_query_to_the_timeline(customer):
    # Given a customer with five orders of three lines each, and one with no order at all
    for _ in range(5):
        full = OrderFactory(customer=customer, amount=Decimal("3.00"))
        for position in (1, 2, 3):
            OrderLineFactory(order=full, position=position, amount=Decimal("1.00"))
    empty = CustomerFactory()

    def queries(customer_id: int) -> int:
        customer_timeline(customer_id=customer_id, kind="orders")
        with CaptureQueriesContext(connection) as captured:
            entries = customer_timeline(customer_id=customer_id, kind="orders").entries
        assert len(entries) == (5 if customer_id == customer.pk else 0)
        return len(captured)

    # Then the orders with their lines take as many queries as no orders: the lines come in the orders' query
    assert queries(customer.pk) == queries(empty.pk)


# --- Demo ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("amount", ["3.00", "0.01", "0.02", "47.13", "999.99"])
def test_demo_lines_sum_to_the_amount_and_are_the_same_each_time(amount):
    lines = demo_order_lines(customer="DEMO-C1", external_id="DEMO-O1", amount=Decimal(amount))
    assert 1 <= len(lines) <= 3
    assert sum(line.amount for line in lines) == Decimal(amount)
    assert all(line.amount >= 0 and 1 <= line.quantity and line.category for line in lines)
    assert lines == demo_order_lines(customer="DEMO-C1", external_id="DEMO-O1", amount=Decimal(amount))


def test_every_demo_order_has_lines_summing_to_its_amount(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # When a small demo is seeded
    call_command("seed_demo", "--seed", "5", "--customers", "120", "--until", "2025-06-30", "--no-progress",
                 stdout=io.StringIO())

    # Then every order has 1 to 3 lines summing exactly to its amount, from the catalogue
    orders = Order.objects.annotate(n=Count("lines"), total=Sum("lines__amount"))
    assert orders.exists()
    assert not orders.exclude(n__gte=1, n__lte=3).exists()
    assert all(o.total == o.amount for o in orders)
    catalogue = {pid: category for pid, _, category, _ in DEMO_CATALOGUE}
    used = set(OrderLine.objects.values_list("product_id", "category").distinct())
    assert all(catalogue[pid] == category for pid, category in used)
    # And the mix is varied: several categories, and orders of more than one line
    assert len({category for _, category in used}) >= 3
    assert orders.filter(n__gte=2).exists()


def test_the_schema_documents_the_lines_and_their_bounds(api):
    # When the OpenAPI schema is read
    schemas = api.get("/api/schema/?format=json").json()["components"]["schemas"]

    # Then an order's input takes at most 500 lines with the model's bounds, and an order shows its lines
    lines = schemas["OrderInputRequest"]["properties"]["lines"]
    assert lines["maxItems"] == 500
    line = schemas[lines["items"]["$ref"].rsplit("/", 1)[1]]["properties"]
    assert (line["quantity"]["minimum"], line["quantity"]["maximum"]) == (1, 100_000)
    assert "lines" in schemas["Order"]["properties"]


def test_the_order_admin_shows_the_lines_read_only(manager):
    # Given an order with one line
    line = OrderLineFactory(product_name="Gift set", category="Gifts")
    staff = Client()
    staff.force_login(manager)

    # When a manager opens the order in the admin
    page = staff.get(f"/admin/crm/order/{line.order.pk}/change/").content.decode()

    # Then the line is shown, with no way to add or change one
    assert "Gift set" in page and "Gifts" in page
    assert 'name="lines-0-product_name"' not in page and 'class="add-row"' not in page
