import datetime as dt
from decimal import Decimal
from itertools import count

import pytest
from rest_framework.test import APIClient

from crm.models import Customer
from crm.services.audit import SYSTEM
from crm.services.customers import customer_cancel, customer_create
from crm.services.orders import OrderInput, orders_insert

UTC = dt.timezone.utc
_ids = count()


def at(y: int, m: int, d: int, h: int = 12) -> dt.datetime:
    return dt.datetime(y, m, d, h, tzinfo=UTC)


class Shop:
    """Customers, orders and cancellations through the services, as the API and imports create them."""

    def __init__(self) -> None:
        self.orders: list[OrderInput] = []

    def customer(self, *order_times: dt.datetime, amount: str = "50.00", **fields) -> Customer:
        n = next(_ids)
        customer, _ = customer_create(actor=SYSTEM, data={"external_id": f"M{n}", "name": f"Customer {n}", **fields})
        for t in order_times:
            self.order(customer, t, amount)
        return customer

    def order(self, customer: Customer, t: dt.datetime, amount: str = "50.00") -> None:
        self.orders.append(OrderInput(f"MO{next(_ids)}", customer.external_id, t, Decimal(amount), "EUR", ""))

    def cancel(self, customer: Customer, t: dt.datetime) -> None:
        self.flush()
        customer_cancel(actor=SYSTEM, customer=customer, cancelled_at=t)

    def flush(self) -> None:
        if self.orders:
            orders_insert(actor=SYSTEM, items=self.orders, all_or_nothing=True)
            self.orders = []


@pytest.fixture
def shop() -> Shop:
    return Shop()


@pytest.fixture
def manager_api(manager) -> APIClient:
    client = APIClient()
    client.force_authenticate(manager)
    return client
