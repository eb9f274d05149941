import time

import pytest

from tests.winback.conftest import customer_with_orders
from winback.models import WinbackCase
from winback.services.lifecycle import lifecycle_scan

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_returning_customers_case_closes_within_seconds_through_a_real_worker(celery_worker_process, api):
    # Given a lapsed customer with an open case (one order long ago)
    customer = customer_with_orders([0])
    lifecycle_scan(full=True)
    case = WinbackCase.objects.get(customer=customer)
    assert case.status == "open"
    # When their new order arrives through the API
    response = api.post("/api/orders/", {"external_id": "BACK-1", "customer": customer.external_id,
                                         "ordered_at": "2026-01-01T10:00:00Z", "amount": "30.00"}, format="json")
    assert response.status_code == 201
    # Then the worker refreshes their lifecycle after commit and the case closes, without waiting for a scan
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        case.refresh_from_db()
        if case.status != "open":
            break
        time.sleep(0.5)
    assert case.status == "returned"
    assert case.reactivation_order.external_id == "BACK-1"
