"""Every business instant is bounded (core.bounds): 1970 to a year from now, by the model, the API, the
import and the database, so no stored or computed timestamp can leave what Python and PostgreSQL hold."""

import datetime as dt

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.utils import timezone

from crm.models import AuditEntry, Customer, Order
from tests.factories import CustomerFactory, OrderFactory
from winback.services.lifecycle import lifecycle_scan

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("ordered_at", ["9999-12-01T00:00:00Z", "9999-12-31", "0001-01-01T00:00:00Z",
                                        "1969-12-31T23:59:59Z", "2024-01-01T00:00:00+16:00"])
def test_an_order_dated_outside_1970_to_next_year_is_refused_and_nothing_is_written(api, ordered_at):
    CustomerFactory(external_id="C-1")
    response = api.post("/api/orders/", {"external_id": "O-1", "customer": "C-1", "ordered_at": ordered_at,
                                         "amount": "10.00"}, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["errors"][0]["field"] == "ordered_at"
    assert not Order.objects.exists()


def test_an_order_a_year_ahead_is_accepted_and_every_read_of_its_customer_still_answers(api, manager):
    # Given an order at the far end of the range, and a lifecycle scan that computes the next crossing
    CustomerFactory(external_id="C-1")
    ahead = (timezone.now() + dt.timedelta(days=365)).isoformat()
    created = api.post("/api/orders/", {"external_id": "O-1", "customer": "C-1", "ordered_at": ahead,
                                        "amount": "10.00"}, format="json")
    assert created.status_code == 201
    lifecycle_scan(full=True)
    # Then the reads that used to break answer
    admin = Client()
    admin.force_login(manager)
    assert api.get("/api/orders/").status_code == 200
    assert api.get("/api/customers/C-1/").status_code == 200
    assert admin.get("/admin/crm/order/").status_code == 200
    assert admin.get(f"/admin/crm/customer/{Customer.objects.get().pk}/change/").status_code == 200


def test_the_database_refuses_an_order_outside_the_range_whoever_writes_it():
    customer = CustomerFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Order.objects.create(external_id="O-9", customer=customer, amount=1, currency="EUR",
                             ordered_at=dt.datetime(9999, 12, 1, tzinfo=dt.UTC))


@pytest.mark.django_db(transaction=True)
def test_the_migration_moves_older_out_of_range_rows_to_the_bounds_with_an_audit_row():
    # Given rows written before the bounds existed
    executor = MigrationExecutor(connection)
    executor.migrate([("crm", "0003_clear_do_not_call_permission")])
    old = executor.loader.project_state([("crm", "0003_clear_do_not_call_permission")]).apps
    customer = old.get_model("crm", "Customer").objects.create(external_id="C-1", name="Ada",
                                                                last_order_at=dt.datetime(9999, 12, 31, tzinfo=dt.UTC))
    old.get_model("crm", "Order").objects.create(external_id="O-1", customer_id=customer.pk, amount=1,
                                                 currency="EUR", ordered_at=dt.datetime(9999, 12, 31, tzinfo=dt.UTC))
    old.get_model("crm", "Contact").objects.create(external_id="K-1", customer_id=customer.pk, channel="call",
                                                   occurred_at=dt.datetime(1, 1, 1, tzinfo=dt.UTC))
    # When the migration runs
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    # Then the rows sit at the bounds, each change audited, and the customer will be recomputed
    order = Order.objects.get()
    assert order.ordered_at == dt.datetime(2199, 12, 31, tzinfo=dt.UTC)
    assert customer.pk == order.customer_id
    assert set(AuditEntry.objects.filter(actor_label__startswith="migration").values_list("entity", flat=True)) == {
        "crm.order", "crm.contact"}
    refreshed = Customer.objects.get()
    assert refreshed.history_version == 1 and refreshed.lifecycle_due_at is None
    assert refreshed.last_order_at < dt.datetime(2200, 1, 1, tzinfo=dt.UTC)
