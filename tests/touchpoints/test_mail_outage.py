"""A mail server outage: temporary errors are retried for the retry window (48 hours by default) with waits
that double up to a cap; when the server is back, everything waiting goes at once, oldest first, each
message once; permanent errors fail at once; past the window a touchpoint fails with the reason.

Time is driven through the services' ``now`` (no sleeping); the SMTP conversations are real (aiosmtpd)."""

import datetime as dt

import pytest
from django.core.checks import Error
from django.db import transaction
from django.utils import timezone

from core.cache import Recent
from crm.models import Contact
from tests.smtp import free_port
from tests.touchpoints.conftest import NOW, make_customer, make_step, make_touchpoint
from touchpoints.checks import retry_settings_in_bounds
from touchpoints.health import outbox_health
from touchpoints.models import Touchpoint, TouchpointSettings
from touchpoints.services import sending
from touchpoints.services.dispatch import touchpoints_dispatch
from touchpoints.services.outage import touchpoints_release_waiting
from touchpoints.services.sending import touchpoint_limits, touchpoint_send
from touchpoints.services.transports import mail_server_probe

pytestmark = pytest.mark.django_db

OUTAGE = "421 4.3.2 Service not available, closing transmission channel"
TICK = dt.timedelta(minutes=1)


@pytest.fixture
def outbox(settings, monkeypatch):
    """The default retry settings; quiet hours squeezed to one minute and a cap no test reaches, so that only
    the mail server decides when a message goes (the limits each process caches are put back afterwards)."""
    settings.TOUCHPOINT_RETRY_WINDOW_HOURS, settings.TOUCHPOINT_RETRY_MAX_DELAY_SECONDS = 48, 1800
    settings.TOUCHPOINT_BATCH_SIZE = 50
    monkeypatch.setattr(sending, "_limits", Recent(sending._limits_load))
    TouchpointSettings.objects.filter(pk=1).update(
        retry_base_seconds=60, cap_count=100, quiet_start=dt.time(3, 0), quiet_end=dt.time(3, 1))
    touchpoint_limits(fresh=True)


def at_risk_customer():
    customer = make_customer(timezone="UTC")
    customer.status = "at_risk"
    customer.save(update_fields=["status"])
    return customer


def tick(now: dt.datetime) -> dict[str, int]:
    """What beat's tick and the workers do at ``now``: release the waiting ones if the server answers,
    hand out what is due in batches, send each batch."""
    outcomes = {"released": touchpoints_release_waiting(probe=mail_server_probe, now=now)}
    with transaction.atomic():
        batches = touchpoints_dispatch(now=now)
    for batch in batches:
        for touchpoint_id in batch:
            outcome = touchpoint_send(touchpoint_id=touchpoint_id, now=now)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


def next_event(now: dt.datetime) -> dt.datetime | None:
    """The next instant something is due (a touchpoint, a retry); beat ticks every minute in between."""
    pending = Touchpoint.objects.filter(status="scheduled")
    times = [t for t in (*pending.values_list("due_at", flat=True), *pending.values_list("retry_at", flat=True))
             if t is not None and t > now]
    return min(times) if times else None


def received_order(smtp) -> list[int]:
    return [int(m["X-Touchpoint"]) for m in smtp.messages]


def test_a_47_hour_outage_then_recovery_sends_every_message_once_in_order_and_fails_none(smtp, outbox):
    # Given messages falling due over the first 46 hours of an outage, three of them to one customer
    amina, omar, lena = at_risk_customer(), at_risk_customer(), at_risk_customer()
    step = make_step()
    due = [(amina, 0), (omar, 1), (amina, 5), (lena, 60 * 3), (amina, 60 * 20), (omar, 60 * 30), (lena, 60 * 46)]
    touchpoints = [make_touchpoint(c, step, due_at=NOW + dt.timedelta(minutes=m)) for c, m in due]
    # and a mail server that answers 421 to every message for 47 hours
    smtp.down_reply = OUTAGE
    recovery = NOW + dt.timedelta(hours=47)
    now, ticks = NOW, 0
    while now < recovery:
        assert "failed" not in tick(now)
        ticks += 1
        now = min(next_event(now) or recovery, recovery)
    # Then during the outage nothing was sent or failed: each customer's first message waits for the mail
    # server, their later ones behind it, never tried
    assert smtp.messages == []
    waiting = Touchpoint.objects.filter(pk__in=[tp.pk for tp in touchpoints])
    firsts = {c.pk: next(tp.pk for tp in touchpoints if tp.customer_id == c.pk) for c in (amina, omar, lena)}
    behind = [tp.pk for tp in touchpoints if tp.pk not in firsts.values()]
    assert len(behind) == 4
    assert set(waiting.exclude(pk__in=behind).values_list("status", "reason")) == {("scheduled", "mail_server")}
    assert set(waiting.filter(pk__in=behind).values_list("status", "attempts")) == {("scheduled", 0)}
    first = waiting.get(pk=touchpoints[0].pk)
    assert first.retry_since == NOW and first.due_at == NOW and "421" in first.last_error
    # its retries came 1, 2, 4, 8, 16 minutes apart, then every 30 minutes: 98 attempts in 47 hours
    assert first.attempts == 98
    # When the server is back, the next tick (at most a minute later) finds it and sends them all
    smtp.down_reply = None
    outcomes = tick(recovery + dt.timedelta(seconds=30))
    # Then each message went once, oldest first, in that one tick, and none failed
    assert outcomes == {"released": len(touchpoints) - len(behind), "sent": len(touchpoints)}
    assert received_order(smtp) == [tp.pk for tp in touchpoints]
    assert len({m["Message-ID"] for m in smtp.messages}) == len(touchpoints)
    assert set(waiting.values_list("status", "reason", "retry_at")) == {("sent", "", None)}
    assert Contact.objects.filter(touchpoint__in=touchpoints).count() == len(touchpoints)
    # and nothing is sent again on later ticks
    for later in range(1, 4):
        tick(recovery + later * dt.timedelta(hours=1))
    assert len(smtp.messages) == len(touchpoints)
    assert ticks < 400  # the loop jumped from one due instant to the next


def test_past_the_window_the_touchpoint_fails_with_the_reason(smtp, outbox):
    # Given a mail server that never comes back
    tp = make_touchpoint(at_risk_customer())
    smtp.down_reply = OUTAGE
    now, attempts_at = NOW, []
    # When the outbox keeps trying
    while True:
        outcomes = tick(now)
        if outcomes.get("retry") or outcomes.get("failed"):
            attempts_at.append(now)
        if outcomes.get("failed"):
            break
        now = next_event(now)
    # Then the last attempt was exactly 48 hours after the first, the 101st, and it failed with why
    tp.refresh_from_db()
    assert (tp.status, tp.attempts, len(attempts_at)) == ("failed", 101, 101)
    assert attempts_at[-1] - attempts_at[0] == dt.timedelta(hours=48)
    gaps = [int((b - a).total_seconds()) for a, b in zip(attempts_at, attempts_at[1:])]
    assert gaps[:6] == [60, 120, 240, 480, 960, 1800] and max(gaps) == 1800
    assert tp.last_error.startswith("Gave up: temporary errors for 48 hours (since 2026-03-10 12:00 UTC, 101 attempts)")
    assert OUTAGE[:3] in tp.last_error
    assert smtp.messages == []


def test_a_permanent_refusal_of_the_server_fails_at_once(smtp, outbox):
    tp = make_touchpoint(at_risk_customer())
    smtp.down_reply = "554 5.7.1 Sender rejected"
    assert tick(NOW) == {"released": 0, "failed": 1}
    tp.refresh_from_db()
    assert (tp.status, tp.attempts, tp.retry_at) == ("failed", 1, None) and "554" in tp.last_error


def test_a_newer_message_never_overtakes_an_older_one_waiting_for_the_same_customer(smtp, outbox):
    # Given an older message to Amina that met the outage and waits 16 minutes for its next attempt
    amina, omar = at_risk_customer(), at_risk_customer()
    older = make_touchpoint(amina, due_at=NOW)
    smtp.down_reply = OUTAGE
    for attempt in range(5):
        tick(older.due_at if attempt == 0 else Touchpoint.objects.get(pk=older.pk).retry_at)
    older.refresh_from_db()
    assert older.retry_at - older.updated_at == dt.timedelta(minutes=16)
    # and, with the server back before the probe noticed, newer messages to Amina and to Omar falling due
    smtp.down_reply = None
    now = older.updated_at + dt.timedelta(minutes=1)
    newer = make_touchpoint(amina, due_at=now)
    other = make_touchpoint(omar, due_at=now)
    # When the outbox hands out what is due, without the tick's probe
    with transaction.atomic():
        batches = touchpoints_dispatch(now=now)
    # Then Omar's goes, Amina's newer one waits behind her older one (even when a worker is handed it)
    assert batches == [[other.pk]]
    assert touchpoint_send(touchpoint_id=newer.pk, now=now) == "skipped"
    assert touchpoint_send(touchpoint_id=other.pk, now=now) == "sent"
    # and when the older one is sent, the newer one follows
    assert touchpoint_send(touchpoint_id=older.pk, now=older.retry_at) == "sent"
    assert tick(older.retry_at) == {"released": 0, "sent": 1}
    assert received_order(smtp) == [other.pk, older.pk, newer.pk]


def test_in_one_batch_a_message_behind_one_that_just_failed_waits(smtp, outbox):
    amina = at_risk_customer()
    first, second = make_touchpoint(amina, due_at=NOW), make_touchpoint(amina, due_at=NOW + dt.timedelta(seconds=1))
    smtp.reply_to_rcpt = ["452 4.2.2 Mailbox full"]  # the first message only
    assert tick(NOW + TICK) == {"released": 0, "retry": 1, "skipped": 1}
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.reason, second.status, second.attempts) == ("scheduled", "temporary_error", "scheduled", 0)
    assert tick(first.retry_at) == {"released": 0, "sent": 2}
    assert received_order(smtp) == [first.pk, second.pk]


def test_a_recovered_server_releases_the_waiting_in_batches_of_the_batch_size(smtp, outbox, settings):
    settings.TOUCHPOINT_BATCH_SIZE = 2
    step = make_step()
    tps = [make_touchpoint(at_risk_customer(), step, due_at=NOW + dt.timedelta(seconds=i)) for i in range(5)]
    smtp.down_reply = OUTAGE
    tick(NOW + TICK)
    # While the server still refuses, the probe says so and nothing is released
    later = NOW + TICK + dt.timedelta(seconds=30)  # the first retry is at NOW + 2 minutes
    assert "421" in mail_server_probe()
    assert touchpoints_release_waiting(probe=mail_server_probe, now=later) == 0
    # Once it answers, all five are due at once and handed out in batches of two, oldest first
    smtp.down_reply = None
    assert mail_server_probe() is None
    assert touchpoints_release_waiting(probe=mail_server_probe, now=later) == 5
    with transaction.atomic():
        assert touchpoints_dispatch(now=later) == [[tps[0].pk, tps[1].pk], [tps[2].pk, tps[3].pk], [tps[4].pk]]


def test_the_probe_reports_a_server_that_cannot_be_reached(smtp, settings):
    settings.EMAIL_PORT = free_port()  # nobody listens there
    assert "ConnectionRefusedError" in mail_server_probe()


def test_health_flags_a_mail_server_outage_longer_than_the_outbox_limit(smtp, outbox, settings):
    # Given a message waiting for the mail server since NOW
    tp = make_touchpoint(at_risk_customer())
    smtp.down_reply = OUTAGE
    tick(NOW)
    limit = settings.HEALTH_OUTBOX_MAX_AGE_SECONDS
    # A blip is reported, not an error
    name, ok, detail = outbox_health(now=NOW + dt.timedelta(seconds=limit - 60))
    assert (name, ok, detail["status"], detail["mail_server"]["status"]) == ("outbox", True, "ok", "retrying")
    # Past the limit it is an outage: not ok (503), with what waits, since when, the next attempt, the error
    name, ok, detail = outbox_health(now=NOW + dt.timedelta(seconds=limit + 60))
    assert (ok, detail["status"]) == (False, "mail server unavailable")
    mail = detail["mail_server"]
    assert (mail["status"], mail["waiting"], mail["since"]) == ("unavailable", 1, NOW.isoformat())
    assert "421" in mail["last_error"] and mail["next_attempt_at"]
    # Once it is sent, all is well again
    smtp.down_reply = None
    tp.refresh_from_db()
    tick(tp.retry_at)
    assert outbox_health(now=tp.retry_at)[1:] == (True, {"status": "ok", "oldest_due_age_seconds": 0.0, "limit_seconds": limit,
                                                        "mail_server": {"status": "ok", "waiting": 0}})


def test_the_health_page_answers_503_during_an_outage(smtp, outbox, anon, settings):
    make_touchpoint(at_risk_customer(), due_at=timezone.now() - dt.timedelta(hours=2))
    smtp.down_reply = OUTAGE
    tick(timezone.now() - dt.timedelta(hours=1))
    response = anon.get("/health/")
    assert response.status_code == 503
    assert response.json()["outbox"]["status"] == "mail server unavailable"


def test_the_admin_shows_which_touchpoints_wait_for_the_mail_server(smtp, outbox, client, manager):
    waiting = make_touchpoint(at_risk_customer(), due_at=timezone.now())
    sent = make_touchpoint(at_risk_customer(), due_at=timezone.now())
    smtp.down_reply = OUTAGE
    touchpoint_send(touchpoint_id=waiting.pk, now=timezone.now())
    smtp.down_reply = None
    touchpoint_send(touchpoint_id=sent.pk, now=timezone.now())
    waiting.refresh_from_db()
    client.force_login(manager)
    page = client.get("/admin/touchpoints/touchpoint/").content.decode()
    assert "Waiting for the mail server<br>next attempt: <bdi>" in page and "SMTP 421: 4.3.2" in page
    filtered = client.get("/admin/touchpoints/touchpoint/?retrying=mail_server").content.decode()
    assert f'value="{waiting.pk}"' in filtered and f'value="{sent.pk}"' not in filtered


@pytest.mark.parametrize(("name", "value"), [
    ("TOUCHPOINT_RETRY_WINDOW_HOURS", 0), ("TOUCHPOINT_RETRY_WINDOW_HOURS", 24 * 15),
    ("TOUCHPOINT_RETRY_MAX_DELAY_SECONDS", 59), ("TOUCHPOINT_RETRY_MAX_DELAY_SECONDS", 6 * 3600 + 1),
])
def test_retry_settings_out_of_bounds_are_reported_and_the_nearest_bound_is_used(settings, name, value):
    setattr(settings, name, value)
    errors = retry_settings_in_bounds(None)
    assert [type(e) for e in errors] == [Error] and name in errors[0].msg and errors[0].id == "touchpoints.E001"
    policy = sending.retry_policy()
    assert dt.timedelta(hours=1) <= policy.window <= dt.timedelta(days=14)
    assert dt.timedelta(seconds=60) <= policy.cap <= dt.timedelta(hours=6)
