"""End to end through a real Celery worker process (Redis on CI) and a real SMTP conversation."""

import datetime as dt
import os
import shutil
import signal
import time
import zoneinfo
from collections import Counter
from decimal import Decimal

import pytest
from django.utils import timezone

from config.celery import app
from crm.services.audit import SYSTEM
from crm.services.orders import OrderInput, orders_insert
from tests.conftest import worker_start, worker_stop
from tests.smtp import SmtpSink
from tests.touchpoints.conftest import make_customer, make_touchpoint
from touchpoints.models import CadenceStep, Touchpoint
from touchpoints.tasks import tick_task, touchpoints_queue_due
from winback.models import LifecycleEvent

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CANDIDATE_ZONES = ["UTC", "Europe/Paris", "Asia/Dubai", "Asia/Kolkata", "Asia/Tokyo", "Australia/Sydney",
                   "Pacific/Auckland", "Pacific/Honolulu", "America/Los_Angeles", "America/New_York", "America/Sao_Paulo"]


def daytime_zone() -> str:
    """A zone where it is now between 10:00 and 18:00, so quiet hours cannot get in the way of the test."""
    now = timezone.now()
    for name in CANDIDATE_ZONES:
        if 10 <= now.astimezone(zoneinfo.ZoneInfo(name)).hour < 18:
            return name
    raise AssertionError("no candidate zone is in daytime")  # the candidates cover every hour


def wait_until(condition, *, seconds: float, poll: float = 0.3, what: str = "") -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(poll)
    raise AssertionError(f"timed out after {seconds:.0f}s waiting for {what}")


def due_touchpoints(n: int) -> list[Touchpoint]:
    """n at-risk customers in a daytime zone, each with an appreciation email due a minute ago."""
    zone = daytime_zone()
    out = []
    for _ in range(n):
        customer = make_customer(timezone=zone)
        customer.status = "at_risk"
        customer.save(update_fields=["status"])
        out.append(make_touchpoint(customer, due_at=timezone.now() - dt.timedelta(minutes=1)))
    return out


@pytest.fixture
def sink():
    sink = SmtpSink().start()
    yield sink
    sink.stop()


@pytest.fixture
def mail_worker(sink):
    app.control.purge()
    proc = worker_start(name="mail", env={"EMAIL_URL": sink.url, "TOUCHPOINT_SEND_LEASE_SECONDS": "5"})
    yield proc
    worker_stop(proc)


def test_an_order_and_an_at_risk_event_become_emails_through_the_worker(sink, mail_worker):
    # Given an English customer who just ordered and an Arabic customer who just became at risk
    zone = daytime_zone()
    english = make_customer(name="John Smith", timezone=zone, email_consent="unknown")
    arabic = make_customer(name="ليلى حسن", timezone=zone, locale="ar")
    now = timezone.now()
    orders_insert(actor=SYSTEM, items=[OrderInput("E2E-1", english.external_id, now - dt.timedelta(minutes=5),
                                                  Decimal("42.50"), "EUR", "")], all_or_nothing=True)
    arabic.status = "at_risk"
    arabic.save(update_fields=["status"])
    LifecycleEvent.objects.create(customer=arabic, kind="at_risk", occurred_at=now - dt.timedelta(minutes=1))
    CadenceStep.objects.filter(cadence__trigger="at_risk").update(offset_hours=0)  # a manager's choice: at once
    # When beat's every-minute tick runs on the worker
    tick_task.delay()
    # Then both emails arrive through the SMTP conversation
    wait_until(lambda: len(sink.messages) >= 2, seconds=60, what="two emails")
    by_to = {m["To"]: m for m in sink.messages}
    assert set(by_to) == {english.email, arabic.email}
    thanks = by_to[english.email]
    assert "42.50" in thanks.get_body(("plain",)).get_content()
    assert 'dir="ltr"' in thanks.get_body(("html",)).get_content()
    assert thanks["List-Unsubscribe"] is None  # transactional: no consent needed, no unsubscribe
    appreciation = by_to[arabic.email]
    html = appreciation.get_body(("html",)).get_content()
    assert 'dir="rtl"' in html and "ليلى" in html
    assert appreciation.get_body(("plain",)).get_content().strip()
    assert appreciation["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert str(appreciation["List-Unsubscribe"]).strip().startswith("<http")
    # And each is a sent touchpoint with a contact on the timeline; the follow-up waits for its day
    wait_until(lambda: Touchpoint.objects.filter(status="sent").count() == 2, seconds=10, what="sent rows")
    assert Touchpoint.objects.filter(status="scheduled", customer=english, step__template="order_follow_up").exists()
    assert english.contacts.get().channel == "email"


def test_the_beat_schedule_has_the_every_minute_tick():
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(task="touchpoints.tick")
    assert task.enabled and (task.interval.every, task.interval.period) == (1, "minutes")


def test_sigkilling_the_worker_three_times_while_200_emails_go_out_loses_none(sink, settings):
    """The figures are printed: delivered, unique, duplicates (at most one per kill is allowed)."""
    settings.TOUCHPOINT_QUEUE_LEASE_SECONDS = 8  # a batch lost with a killed worker is queued again after this
    due_touchpoints(200)
    sink.delay = 0.03  # a server that takes its time, so kills land mid-conversation
    app.control.purge()
    env = {"EMAIL_URL": sink.url, "TOUCHPOINT_SEND_LEASE_SECONDS": "5"}
    worker = worker_start(name="victim", env=env, new_session=True, log_name="test-worker-kill.log")
    kills = 0
    deadline = time.monotonic() + 240
    try:
        touchpoints_queue_due()
        while time.monotonic() < deadline:
            delivered = len({m["Message-ID"] for m in sink.messages})
            # Done when every touchpoint is recorded as sent (one delivered but not yet recorded when its
            # worker died is sent again once its lease runs out: that is where a duplicate can come from).
            if kills == 3 and Touchpoint.objects.exclude(status="sent").count() == 0:
                break
            if kills < 3 and delivered >= 40 + 50 * kills:
                os.killpg(worker.pid, signal.SIGKILL)  # the worker and its pool, as in a crash
                worker.wait()
                kills += 1
                worker = worker_start(name="victim", env=env, new_session=True, log_name="test-worker-kill.log")
            touchpoints_queue_due()  # what beat's tick does every minute
            time.sleep(0.5)
    finally:
        try:
            os.killpg(worker.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        worker.wait(timeout=30)
    counts = Counter(m["Message-ID"] for m in sink.messages)
    duplicates = sum(n - 1 for n in counts.values())
    print(f"\nSIGKILL test: {kills} kills, {len(sink.messages)} messages received, {len(counts)} unique, {duplicates} duplicates")
    assert kills == 3
    assert len(counts) == 200
    assert duplicates <= kills
    assert Touchpoint.objects.filter(status="sent").count() == 200
    # One contact per touchpoint on the timelines, once the next tick's repair pass (a minute on) has
    # written any a kill left out
    from crm.models import Contact
    from touchpoints.services.dispatch import touchpoints_repair

    touchpoints_repair(now=timezone.now() + dt.timedelta(minutes=2))
    assert Contact.objects.filter(channel="email").count() == 200


@pytest.mark.postgres
def test_two_dispatchers_at_once_take_disjoint_batches(settings):
    import threading

    from django.db import connection, transaction

    from touchpoints.services.dispatch import touchpoints_dispatch

    due_touchpoints(300)
    barrier = threading.Barrier(2)
    taken: list[list[int]] = []

    def dispatcher():
        try:
            with transaction.atomic():
                barrier.wait()
                ids = [i for batch in touchpoints_dispatch(limit=200, batch_size=50) for i in batch]
                barrier.wait()  # both hold their rows at the same time
                taken.append(ids)
        finally:
            connection.close()

    threads = [threading.Thread(target=dispatcher) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    first, second = sorted(taken, key=len, reverse=True)
    assert len(first) == 200 and len(second) == 100  # the second skipped the first's locked rows
    assert not set(first) & set(second)


def _redis_server(port: int):
    import subprocess

    return subprocess.Popen([shutil.which("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _tick(redis_url: str) -> str:
    """What beat's every-minute tick does, in a process of its own on the given broker."""
    import subprocess
    import sys

    from tests.conftest import ROOT, subprocess_env

    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from touchpoints.tasks import touchpoints_queue_due;"
         " print(touchpoints_queue_due())"],
        cwd=ROOT, env=subprocess_env(REDIS_URL=redis_url, DJANGO_SETTINGS_MODULE="config.settings"),
        capture_output=True, text=True, timeout=120,
    )
    return result.stdout + result.stderr


@pytest.mark.skipif(
    not shutil.which("redis-server"),
    reason="needs the redis-server program to stop and restart a Redis of its own; .ci/run provides it, and "
           "under CI=true any skip fails the run",
)
def test_touchpoints_wait_out_a_redis_outage_and_all_go_out_once_after_it(sink):
    from tests.smtp import free_port

    due_touchpoints(20)
    port = free_port()
    redis_url = f"redis://127.0.0.1:{port}/0"
    redis = _redis_server(port)
    time.sleep(0.5)
    worker = worker_start(name="outage", env={"EMAIL_URL": sink.url, "REDIS_URL": redis_url}, log_name="test-worker-outage.log")
    try:
        # Given Redis goes down
        redis.terminate()
        redis.wait()
        # When beat ticks during the outage (twice, a minute apart), nothing can be queued
        outage_started = time.monotonic()
        for _ in range(2):
            _tick(redis_url)
            assert Touchpoint.objects.filter(status="scheduled").count() == 20
            # the broker refused: nothing waits for a queue lease, the next tick retries at once
            assert not Touchpoint.objects.filter(queued_until__isnull=False).exists()
            time.sleep(max(0.0, 30 - (time.monotonic() - outage_started)))
        time.sleep(max(0.0, 60 - (time.monotonic() - outage_started)))
        assert sink.messages == []
        # And Redis returns after a minute
        redis = _redis_server(port)
        time.sleep(0.5)
        _tick(redis_url)
        # Then the worker reconnects and every touchpoint goes out, once
        wait_until(lambda: Touchpoint.objects.filter(status="sent").count() == 20, seconds=120, poll=1,
                   what="20 sent touchpoints after the outage")
        counts = Counter(m["Message-ID"] for m in sink.messages)
        assert len(counts) == 20 and max(counts.values()) == 1
    finally:
        worker_stop(worker)
        redis.terminate()
        redis.wait()
