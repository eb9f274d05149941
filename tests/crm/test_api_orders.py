import pytest

from crm.models import AuditEntry, Customer, Order
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def order(external_id="O-1", customer="C-1", amount="10.00", **extra):
    return {"external_id": external_id, "customer": customer, "ordered_at": "2025-03-01T10:00:00Z", "amount": amount, **extra}


@pytest.fixture
def customer():
    return CustomerFactory(external_id="C-1")


def test_an_order_is_created_once_and_moves_the_customer_figures(api, customer):
    response = api.post("/api/orders/", order(), format="json")
    assert response.status_code == 201, response.data
    assert response.data["customer"] == "C-1"
    customer.refresh_from_db()
    assert (customer.order_count, str(customer.total_spent), customer.status) == (1, "10.00", "active")
    assert customer.acquired_at == customer.last_order_at
    assert AuditEntry.objects.filter(entity="crm.order", action="create", customer=customer).count() == 1


def test_the_same_order_again_returns_it_and_creates_nothing(api, customer):
    first = api.post("/api/orders/", order(), format="json")
    again = api.post("/api/orders/", order(), format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.data == first.data
    assert Order.objects.count() == 1
    customer.refresh_from_db()
    assert customer.order_count == 1


def test_a_different_order_under_the_same_external_id_is_a_conflict(api, customer):
    api.post("/api/orders/", order(), format="json")
    response = api.post("/api/orders/", order(amount="99.00"), format="json")
    assert response.status_code == 409
    assert "already exists with different data" in response.data["detail"]
    assert "amount" in response.data["detail"]
    assert Order.objects.get().amount == 10


def test_unknown_customer_is_a_clear_400(api):
    response = api.post("/api/orders/", order(customer="NOPE"), format="json")
    assert response.status_code == 400
    assert response.data["errors"] == [{"field": "customer", "message": "No customer with external_id 'NOPE'.", "code": "unknown_customer"}]


def test_bulk_is_all_or_nothing_and_names_each_bad_item(api, customer):
    payload = [order("O-1"), order("O-2", amount="-3"), order("O-3"), order("O-4", customer="GHOST"), order("O-5", ordered_at="yesterday")]
    response = api.post("/api/orders/", payload, format="json")
    assert response.status_code == 400
    assert {(e["index"], e["field"]) for e in response.data["errors"]} == {(1, "amount"), (4, "ordered_at")}
    assert not Order.objects.exists()
    # With shape errors fixed, the unknown customer is reported by index, and still nothing is written.
    payload[1] = order("O-2")
    payload[4] = order("O-5")
    response = api.post("/api/orders/", payload, format="json")
    assert response.status_code == 400
    assert response.data["errors"] == [{"index": 3, "field": "customer", "message": "No customer with external_id 'GHOST'.", "code": "unknown_customer"}]
    assert not Order.objects.exists()
    customer.refresh_from_db()
    assert customer.order_count == 0


def test_good_bulk_creates_all_and_a_repeat_creates_nothing(api, customer):
    other = CustomerFactory(external_id="C-2")
    payload = [order("O-1"), order("O-2", amount="5.50"), order("O-3", customer="C-2", amount="1.00")]
    first = api.post("/api/orders/", payload, format="json")
    assert first.status_code == 201
    assert [o["external_id"] for o in first.data] == ["O-1", "O-2", "O-3"]
    again = api.post("/api/orders/", payload, format="json")
    assert again.status_code == 200
    assert Order.objects.count() == 3
    customer.refresh_from_db(); other.refresh_from_db()
    assert (customer.order_count, str(customer.total_spent)) == (2, "15.50")
    assert (other.order_count, str(other.total_spent)) == (1, "1.00")


def test_bulk_with_a_conflict_is_409_and_writes_nothing(api, customer):
    api.post("/api/orders/", order("O-1"), format="json")
    response = api.post("/api/orders/", [order("O-2"), order("O-1", amount="2.00")], format="json")
    assert response.status_code == 409
    assert response.data["errors"][0]["index"] == 1
    assert response.data["errors"][0]["code"] == "conflict"
    assert list(Order.objects.values_list("external_id", flat=True)) == ["O-1"]


def test_the_same_order_twice_in_one_bulk_is_created_once(api, customer):
    response = api.post("/api/orders/", [order("O-1"), order("O-1")], format="json")
    assert response.status_code == 201
    assert Order.objects.count() == 1
    assert Customer.objects.get(pk=customer.pk).order_count == 1


def test_a_list_of_things_that_are_not_orders_names_each_bad_index(api, customer):
    # Given a list whose items are a number, a string and null
    # When it is posted as orders
    response = api.post("/api/orders/", [1, "x", None], format="json")
    # Then each item is named by its index, in the error shape, and nothing is written
    assert response.status_code == 400, response.content[:300]
    assert [(e["index"], e["field"]) for e in response.data["errors"]] == [(0, ""), (1, ""), (2, "")]
    assert "Expected a dictionary" in response.data["errors"][0]["message"]
    assert "may not be null" in response.data["errors"][2]["message"]
    assert not Order.objects.exists()


def test_a_thousand_orders_fit_in_one_request_and_more_are_refused(api, customer):
    # Given a thousand and one good orders
    payload = [order(f"O-{i}") for i in range(1_001)]
    # When all are posted at once, they are refused as a whole (a larger load is a CSV import)
    response = api.post("/api/orders/", payload, format="json")
    assert response.status_code == 400
    assert response.data["errors"] == [{"index": None, "field": "", "message": "Ensure this field has no more than 1000 elements."}]
    assert not Order.objects.exists()
    # When a thousand are posted, they are all written
    assert api.post("/api/orders/", payload[:1_000], format="json").status_code == 201
    assert Order.objects.count() == 1_000


@pytest.mark.parametrize("query, field", [
    ("ordered_after=2024-01-01T00:00:00%2B16:00", "ordered_after"),
    ("ordered_before=9999-12-31T23:59:59-15:00", "ordered_before"),
    ("ordered_after=0001-01-01T00:00:00Z", "ordered_after"),
])
def test_an_out_of_range_date_filter_is_a_400_naming_it(api, customer, query, field):
    # Given an order, so that the filter would reach the database
    api.post("/api/orders/", order(), format="json")
    # When the list is filtered with an instant no order can have (offset past +-15:59, year 1 or 9999)
    response = api.get(f"/api/orders/?{query}")
    # Then it is a clear 400 naming the filter
    assert response.status_code == 400, response.content[:300]
    assert [e["field"] for e in response.data["errors"]] == [field]


@pytest.mark.parametrize("ordered_at", ["9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "1969-12-31T23:59:59Z",
                                        "2099-01-01T00:00:00+02:00"])
def test_an_order_instant_out_of_bounds_is_a_400(api, customer, ordered_at):
    # When an order is posted with an instant outside 1970 .. a year ahead
    response = api.post("/api/orders/", order(ordered_at=ordered_at), format="json")
    # Then it is refused, naming ordered_at, and nothing is written
    assert response.status_code == 400, response.content[:300]
    assert [e["field"] for e in response.data["errors"]] == ["ordered_at"]
    assert not Order.objects.exists()
