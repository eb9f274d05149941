"""Two snapshot refreshes of the same months at once (a scan's and the nightly one) both succeed."""

import datetime as dt
import threading

import pytest
from django.db import connection

from metrics.models import MetricSnapshot
from metrics.services.periods import months_between
from metrics.services.snapshots import metrics_refresh

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_concurrent_refreshes_of_a_period_are_serialised_not_failed(monkeypatch):
    # Given two refreshes of the same months that both reach their write at the same moment
    periods = months_between(dt.date(2025, 1, 1), dt.date(2025, 3, 1))
    both_writing = threading.Barrier(2)
    original = type(MetricSnapshot.objects).bulk_create

    def bulk_create_when_both_arrive(self, objs, *args, **kwargs):
        try:  # without serialisation both get here after deleting; with it the second waits for the lock
            both_writing.wait(timeout=2)
        except threading.BrokenBarrierError:
            pass
        return original(self, objs, *args, **kwargs)

    monkeypatch.setattr(type(MetricSnapshot.objects), "bulk_create", bulk_create_when_both_arrive)
    errors: list[BaseException] = []

    def refresh() -> None:
        try:
            metrics_refresh(periods=periods)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)
        finally:
            connection.close()

    # When they run
    threads = [threading.Thread(target=refresh) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then neither failed, and each period holds one set of figures
    assert errors == []
    assert MetricSnapshot.objects.filter(metric="churn_rate", start=dt.date(2025, 1, 1)).count() == 1
