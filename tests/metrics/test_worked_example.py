"""docs/metrics.md section 4, built from real customers, orders and cancellations, read through the API."""

import pytest

from tests.metrics.conftest import at
from winback.services.lifecycle import lifecycle_scan

pytestmark = pytest.mark.django_db


def test_the_worked_example_of_metrics_md(shop, manager_api):
    # Given 200 customers active on 1 March 2026 (one order each; 90 days before a lapse)...
    for _ in range(190):
        shop.customer(at(2026, 2, 10))  # lapse on 11 May: active through March
    for _ in range(10):
        shop.customer(at(2025, 12, 10))  # lapse on 10 March: the 10 who lapse in March
    # ...40 new customers in March, 2 of whom cancel before 1 April
    for _ in range(38):
        shop.customer(at(2026, 3, 5))
    cancelling = [shop.customer(at(2026, 3, 3)) for _ in range(2)]
    shop.flush()
    for customer in cancelling:
        shop.cancel(customer, at(2026, 3, 20))
    lifecycle_scan(full=True, now=at(2026, 4, 2))
    # When a manager reads March's KPIs
    response = manager_api.get("/api/metrics/?month=2026-03")
    # Then the counts and rates are those of the worked example
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["counts"] == {"CS": 200, "CN": 40, "L0": 10, "Ln": 2, "R": 0, "LP": 0, "RP": 0, "CE": 228}
    metrics = body["metrics"]
    assert metrics["churn_rate"]["value"] == pytest.approx(0.05)
    assert metrics["churn_rate_incl_new"]["value"] == pytest.approx(0.06)
    assert metrics["retention_rate"]["value"] == pytest.approx(0.94)
    assert metrics["growth_rate"]["value"] == pytest.approx(0.14)
    assert metrics["growth_rate"]["net_adds"] == 28
    # And every figure says how it is computed, with its inputs
    assert metrics["churn_rate"]["definition"].startswith("L0 / CS")
    assert (metrics["churn_rate"]["numerator"], metrics["churn_rate"]["denominator"]) == (10, 200)
    assert metrics["reactivation_rate"]["value"] is None  # LP = 0: n/a, not 0
    assert body["definitions"]["CE"] == "customers active at E, counted directly"
    assert body["source"] == "live"


def test_the_api_is_for_managers_only(agent, client):
    from rest_framework.test import APIClient

    api = APIClient()
    assert api.get("/api/metrics/?month=2026-03").status_code in (401, 403)
    api.force_authenticate(agent)
    assert api.get("/api/metrics/?month=2026-03").status_code == 403
    assert api.get("/api/metrics/series/?metric=churn_rate&start=2026-01-01&end=2026-03-01").status_code == 403
    assert api.get("/api/metrics/cohorts/").status_code == 403


@pytest.mark.parametrize("query, field", [
    ("month=2026-13", "month"), ("start=2026-03-01", "start"), ("start=2026-03-01&end=2026-02-01", "end"),
    ("start=yesterday&end=2026-02-01", "start"), ("month=2026-03&start=2026-03-01&end=2026-04-01", "month"),
])
def test_a_bad_period_is_a_clear_400(manager_api, query, field):
    response = manager_api.get(f"/api/metrics/?{query}")
    assert response.status_code == 400
    assert any(e["field"] == field for e in response.json()["errors"]), response.json()
