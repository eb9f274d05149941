import datetime as dt
import io

import pytest
from django.core.management import call_command

from metrics.models import MetricSnapshot
from metrics.services.calculators import metrics_compute
from metrics.services.periods import Period, months_between
from metrics.services.snapshots import metrics_refresh
from winback.services.lifecycle import lifecycle_scan

pytestmark = pytest.mark.django_db

UNTIL = dt.date(2025, 7, 1)


@pytest.fixture
def demo():
    call_command("seed_demo", "--customers", "400", "--until", str(UNTIL), "--seed", "7", stdout=io.StringIO())
    lifecycle_scan(full=True, now=dt.datetime(2025, 7, 1, tzinfo=dt.timezone.utc))


def test_snapshot_and_live_values_agree_on_the_demo_data_for_every_metric_and_month(demo):
    # Given the demo shop and its snapshots for every month of its history
    months = months_between(dt.date(2022, 7, 1), UNTIL)
    call_command("metrics_refresh", "--start", "2022-07-01", "--end", str(UNTIL), "--inline", stdout=io.StringIO())
    # When every figure is computed live, month by month, one period at a time
    stored = {(r.metric, r.start): r for r in MetricSnapshot.objects.all()}
    checked = 0
    for month in months:
        live = metrics_compute(periods=[month])[month]
        for name, figure in live.items():
            row = stored[(name, month.start)]
            # Then they are equal (to the six decimals a snapshot keeps)
            if figure.value is None:
                assert row.value is None, (name, month)
            else:
                assert float(row.value) == pytest.approx(figure.value, abs=1e-6), (name, month)
            checked += 1
    assert checked == len(months) * len(live)
    # And the demo is not trivial: customers came, lapsed and came back
    churned = MetricSnapshot.objects.filter(metric="L0", value__gt=0).count()
    assert churned > 6 and MetricSnapshot.objects.filter(metric="RP", value__gt=0).exists()


def test_a_refresh_replaces_a_period_and_never_counts_it_twice(demo):
    march = Period(dt.date(2025, 3, 1), dt.date(2025, 4, 1))
    first = metrics_refresh(periods=[march])
    total = MetricSnapshot.objects.count()
    again = metrics_refresh(periods=[march])
    assert first == again == total == MetricSnapshot.objects.count()
    assert MetricSnapshot.objects.filter(metric="churn_rate", start=march.start).count() == 1


def test_a_half_filled_period_is_refilled_whole(demo, monkeypatch):
    march = Period(dt.date(2025, 3, 1), dt.date(2025, 4, 1))
    metrics_refresh(periods=[march])
    MetricSnapshot.objects.filter(start=march.start, metric__in=["CS", "churn_rate"]).delete()  # a lost half
    metrics_refresh(periods=[march])
    assert MetricSnapshot.objects.filter(start=march.start, metric="churn_rate").count() == 1


def test_the_command_refuses_bad_arguments():
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="both"):
        call_command("metrics_refresh", "--start", "2025-01-01")
    with pytest.raises(CommandError, match="after"):
        call_command("metrics_refresh", "--start", "2025-03-01", "--end", "2025-01-01")
    assert not MetricSnapshot.objects.exists()


def test_the_cohort_matrix_from_snapshots_equals_the_live_one(demo):
    from metrics.services.cohorts import cohort_retention

    year = Period(dt.date(2024, 7, 1), dt.date(2025, 7, 1))
    metrics_refresh(periods=months_between(year.start, year.end))
    stored = cohort_retention(period=year)
    live = cohort_retention(period=year, live=True)
    assert (stored["source"], live["source"]) == ("snapshot", "live")
    assert stored["cohorts"] == live["cohorts"]
    assert sum(c["customers"] for c in live["cohorts"]) > 20
    # A refresh of one month keeps the cells of later boundaries
    metrics_refresh(periods=[Period(dt.date(2024, 9, 1), dt.date(2024, 10, 1))])
    assert cohort_retention(period=year)["source"] == "snapshot"


def test_the_api_reads_a_month_from_its_snapshot_equal_to_live(demo, manager):
    from rest_framework.test import APIClient

    march = Period(dt.date(2025, 3, 1), dt.date(2025, 4, 1))
    metrics_refresh(periods=months_between(dt.date(2024, 4, 1), dt.date(2025, 7, 1)))  # cohort cells too
    manager.refresh_from_db()
    api = APIClient()
    api.force_authenticate(manager)
    stored = api.get("/api/metrics/?month=2025-03").json()
    live = api.get("/api/metrics/?month=2025-03&live=1").json()
    assert (stored["source"], live["source"]) == ("snapshot", "live")
    assert stored["counts"] == live["counts"]
    for name, figure in live["metrics"].items():
        assert stored["metrics"][name]["value"] == pytest.approx(figure["value"], abs=1e-6), name
    assert set(stored["metrics"]) == set(live["metrics"])
