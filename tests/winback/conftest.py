import datetime as dt
from decimal import Decimal
from itertools import count

import pytest

from crm.models import Customer
from crm.services.audit import SYSTEM
from crm.services.customers import customer_create
from crm.services.orders import OrderInput, orders_insert

BASE = dt.datetime(2024, 1, 1, 12, tzinfo=dt.timezone.utc)
_ids = count()


def day(n: float) -> dt.datetime:
    return BASE + dt.timedelta(days=n)


def add_orders(customer: Customer, days: list[float], amount: str = "50.00", coupon: str = "") -> None:
    items = [OrderInput(f"ORD{next(_ids)}", customer.external_id, day(d), Decimal(amount), "EUR", coupon) for d in days]
    orders_insert(actor=SYSTEM, items=items, all_or_nothing=True)


def customer_with_orders(days: list[float], **kwargs) -> Customer:
    customer, _ = customer_create(actor=SYSTEM, data={"external_id": f"CUS{next(_ids)}", "name": "Test", **kwargs})
    if days:
        add_orders(customer, days)
    customer.refresh_from_db()
    return customer


@pytest.fixture
def make_customer():
    return customer_with_orders
