import datetime as dt

import pytest

from metrics.services.periods import month_of
from metrics.services.snapshots import metrics_refresh
from tests.metrics.test_scenarios import four_lives  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db


def test_a_series_reads_snapshots_and_computes_the_months_without_one(manager_api, four_lives):  # noqa: F811
    metrics_refresh(periods=[month_of(dt.date(2026, 3, 1))])
    response = manager_api.get("/api/metrics/series/?metric=churn_rate&grain=month&start=2026-01-01&end=2026-04-01")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["definition"].startswith("L0 / CS")
    assert [(p["period"], p["source"]) for p in body["points"]] == [
        ("2026-01", "live"), ("2026-02", "live"), ("2026-03", "snapshot")]
    assert body["points"][2]["value"] == pytest.approx(0.5)
    assert (body["points"][2]["numerator"], body["points"][2]["denominator"]) == (1, 2)


@pytest.mark.parametrize("query, field", [
    ("metric=nope&start=2026-01-01&end=2026-04-01", "metric"),
    ("metric=churn_rate&grain=week&start=2026-01-01&end=2026-04-01", "grain"),
    ("metric=churn_rate&start=2026-01-01", "end"),
])
def test_series_errors_name_the_field(manager_api, query, field):
    response = manager_api.get(f"/api/metrics/series/?{query}")
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == [field]


def test_cohort_retention(manager_api, four_lives):  # noqa: F811
    response = manager_api.get("/api/metrics/cohorts/?start=2025-10-01&end=2026-04-01")
    assert response.status_code == 200
    rows = {r["cohort"]: r for r in response.json()["cohorts"]}
    # October 2025: the pool customer; active at the start of Nov and Dec, lapsed 30 Dec, back 10 March
    october = rows["2025-10"]
    assert october["customers"] == 1
    assert [c["active"] for c in october["cells"]][:6] == [1, 1, 0, 0, 0, 1]
    # March 2026: the customer who joined and cancelled
    assert rows["2026-03"]["customers"] == 1 and rows["2026-03"]["cells"][0]["active"] == 0
    assert "share of the cohort" in response.json()["definition"]


def test_a_lifecycle_scan_asks_for_a_snapshot_refresh_after_commit(django_capture_on_commit_callbacks, monkeypatch):
    from metrics import tasks
    from winback.services.lifecycle import lifecycle_scan

    calls = []
    monkeypatch.setattr(tasks.refresh_task, "apply_async", lambda args=(), kwargs=None, **options: calls.append(kwargs))
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle_scan(full=True)  # a rebuild (policy change, backfill) may change any month
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle_scan()  # an incremental scan: this month and the last
    assert calls == [{"months": 36}, {"months": 2}]


def test_an_order_backdated_into_an_earlier_month_refreshes_the_months_from_there(django_capture_on_commit_callbacks, monkeypatch, shop):
    from django.utils import timezone

    from metrics import tasks
    from tests.metrics.conftest import at
    from winback.services.lifecycle import lifecycle_refresh, lifecycle_scan

    calls = []
    monkeypatch.setattr(tasks.refresh_task, "apply_async", lambda args=(), kwargs=None, **options: calls.append(kwargs))
    today = timezone.localdate()
    long_ago = today.replace(day=1) - dt.timedelta(days=400)
    customer = shop.customer(at(long_ago.year, long_ago.month, 3))
    shop.flush()
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle_scan(full=True)
    calls.clear()
    # When an order is backfilled into a month five months ago and the customer is refreshed
    backdated = today.replace(day=1) - dt.timedelta(days=140)
    shop.order(customer, at(backdated.year, backdated.month, 10))
    shop.flush()
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle_refresh(customer_ids=[customer.pk])
    # Then the months from the earliest changed event on are refreshed (here: the reactivation it created)
    assert calls == [{"start": backdated.replace(day=1).isoformat(),
                      "end": (today.replace(day=1) + dt.timedelta(days=32)).replace(day=1).isoformat()}]
    # And an order today refreshes nothing at once (the next scan's refresh covers this month)
    calls.clear()
    shop.order(customer, timezone.now())
    shop.flush()
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle_refresh(customer_ids=[customer.pk])
    assert calls == []
