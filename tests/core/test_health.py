"""/health/ answers 503 when a loop the service depends on has stopped, and says which."""

import datetime as dt

import pytest
from django.utils import timezone

from core.models import Heartbeat
from core.selectors import TICK_TASK, task_heartbeat_name
from core.services import heartbeat_record
from core.tasks import heartbeat as heartbeat_task
from tests.factories import CustomerFactory
from tests.winback.bounds import legacy_update
from touchpoints.models import CadenceStep, Touchpoint
from touchpoints.tasks import tick_task
from winback.models import Offer

pytestmark = pytest.mark.django_db


def _tick_at(at: dt.datetime) -> None:
    Heartbeat.objects.update_or_create(name=task_heartbeat_name(TICK_TASK), defaults={"beat_at": at})


def test_all_loops_running_is_200_with_every_check_named(anon):
    heartbeat_record(name=task_heartbeat_name(TICK_TASK), worker="w1")
    response = anon.get("/health/")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["database"], body["broker_status"], body["tick"], body["outbox"]["status"]) == (
        "ok", "ok", "ok", "ok", "ok")
    assert body["last_success_age_seconds"][TICK_TASK] < 5


def test_a_tick_that_never_ran_or_stopped_is_503(anon, settings):
    assert anon.get("/health/").json()["tick"] == "never ran"
    assert anon.get("/health/").status_code == 503
    _tick_at(timezone.now() - dt.timedelta(seconds=settings.HEALTH_TICK_STALE_SECONDS + 1))
    response = anon.get("/health/")
    assert (response.status_code, response.json()["tick"]) == (503, "stale")
    # The container's liveness check stays green: the web process itself is fine.
    assert anon.get("/health/live/").status_code == 200


def test_an_outbox_whose_oldest_due_touchpoint_waits_too_long_is_503(anon, settings):
    heartbeat_record(name=task_heartbeat_name(TICK_TASK), worker="w1")
    step = CadenceStep.objects.filter(channel="email").first()
    late = timezone.now() - dt.timedelta(seconds=settings.HEALTH_OUTBOX_MAX_AGE_SECONDS + 60)
    Touchpoint.objects.create(customer=CustomerFactory(), step=step, channel="email", anchor_at=late, due_at=late,
                              idempotency_key="k1")
    response = anon.get("/health/")
    assert response.status_code == 503
    assert response.json()["outbox"]["status"] == "behind"
    assert response.json()["outbox"]["oldest_due_age_seconds"] >= settings.HEALTH_OUTBOX_MAX_AGE_SECONDS + 60


def test_a_periodic_task_success_is_recorded_for_health(settings):
    # Given the tick task ran in a worker (eagerly here), its success is recorded by the task_success signal
    settings.CELERY_TASK_ALWAYS_EAGER = True
    tick_task.apply()
    assert Heartbeat.objects.filter(name=task_heartbeat_name(TICK_TASK)).exists()
    # ... and a task /health/ does not watch records nothing
    heartbeat_task.apply(kwargs={"name": "worker"})
    assert set(Heartbeat.objects.values_list("name", flat=True)) == {"worker", task_heartbeat_name(TICK_TASK)}


def test_a_bad_setting_stored_before_the_bounds_is_503_and_named(anon):
    # Given a running loop, and an offer whose validity an older version let through
    heartbeat_record(name=task_heartbeat_name(TICK_TASK), worker="w1")
    assert anon.get("/health/").json()["settings"]["problems"] == []
    legacy_update(Offer.objects.filter(active=True).first(), valid_days=2_147_483_647)
    # When a monitor asks
    response = anon.get("/health/")
    # Then it says which setting is wrong
    assert response.status_code == 503
    assert any("valid" in problem.lower() for problem in response.json()["settings"]["problems"])
