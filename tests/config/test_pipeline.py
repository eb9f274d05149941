"""The pipeline and the beat schedule, each declared once (config/pipeline.py, config/schedule.py)."""

import json

import pytest
from django.db import transaction
from django_celery_beat.models import PeriodicTask

from config.pipeline import PIPELINE
from config.schedule import BEAT_SCHEDULE
from crm.signals import history_changed
from predictions.signals import predictions_refreshed
from tests.factories import CustomerFactory
from winback.services.policy import policy_change
from winback.signals import lifecycle_scanned, policy_changed
from winback.tasks import lifecycle_refresh_task, lifecycle_scan_task

pytestmark = pytest.mark.django_db


def test_every_event_of_the_pipeline_has_its_follow_up_connected():
    for signal, receiver in PIPELINE:
        live, _ = signal._live_receivers(sender=None)
        assert receiver in live, receiver
    assert {signal for signal, _ in PIPELINE} == {history_changed, lifecycle_scanned, policy_changed, predictions_refreshed}


def test_a_policy_change_asks_for_a_full_rebuild_once_it_commits(monkeypatch):
    sent = []
    monkeypatch.setattr(lifecycle_scan_task, "apply_async", lambda args=None, kwargs=None, **o: sent.append(kwargs))
    with transaction.atomic():
        policy_change(user=None, values={"k": "2.50"}, note="tighter")
    assert sent == [{"full": True}]


def test_an_order_asks_for_its_customers_refresh(api, monkeypatch):
    sent = []
    monkeypatch.setattr(lifecycle_refresh_task, "apply_async", lambda args=None, kwargs=None, **o: sent.append(args))
    customer = CustomerFactory(external_id="C-1")
    api.post("/api/orders/", {"external_id": "O-1", "customer": "C-1", "ordered_at": "2025-03-01T10:00:00Z",
                              "amount": "1.00"}, format="json")
    assert sent == [([customer.pk],)]


def test_the_beat_schedule_exists_after_migrate_exactly_as_declared():
    # (The test database was migrated, then flushed and ensured again, as any install is.)
    stored = {t.name: t for t in PeriodicTask.objects.exclude(name="celery.backend_cleanup")}
    assert set(stored) == {entry.name for entry in BEAT_SCHEDULE}
    for entry in BEAT_SCHEDULE:
        task = stored[entry.name]
        assert (task.task, json.loads(task.kwargs)) == (entry.task, entry.kwargs)
        if entry.every:
            assert (task.interval.every, task.interval.period) == entry.every
        else:
            assert (task.crontab.minute, task.crontab.hour) == (entry.crontab["minute"], entry.crontab["hour"])
