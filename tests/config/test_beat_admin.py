"""The beat schedule in the admin (config/admin.py, config/beat.py): managers see the periodic tasks as sentences
and run one now; beat's schedules are the superuser's."""

import datetime as dt
import json

import pytest
from celery.app.task import Task
from django.contrib.admin.models import LogEntry
from django.utils import translation
from django_celery_beat.models import ClockedSchedule, CrontabSchedule, IntervalSchedule, PeriodicTask, SolarSchedule

from config.beat import periodic_task_sentence
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

SCHEDULE_MODELS = ("clockedschedule", "crontabschedule", "intervalschedule", "solarschedule")
CHANGELIST = "/admin/django_celery_beat/periodictask/"


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


@pytest.fixture
def sent(monkeypatch) -> list[tuple]:
    """What reaches the broker: the calls of Celery's own apply_async (after the task base's commit hook)."""
    calls: list[tuple] = []

    def record(task, args=None, kwargs=None, **options):
        calls.append((task.name, args, kwargs, options))

    monkeypatch.setattr(Task, "apply_async", record)
    return calls


def task_with(**schedule) -> PeriodicTask:
    return PeriodicTask.objects.create(name=f"t{PeriodicTask.objects.count()}", task="core.heartbeat", **schedule)


@pytest.mark.parametrize("user", ["manager", "superuser"])
def test_only_a_superuser_sees_beats_schedules(client, request, user):
    # Given a manager and a superuser
    client.force_login(request.getfixturevalue(user))
    # When they open the admin's index and each schedule's list
    index = client.get("/admin/").content.decode()
    lists = {model: client.get(f"/admin/django_celery_beat/{model}/").status_code for model in SCHEDULE_MODELS}
    # Then both see the periodic tasks; only the superuser sees (and may open) the schedules
    assert CHANGELIST in index
    shown = {model for model in SCHEDULE_MODELS if f"/admin/django_celery_beat/{model}/" in index}
    if user == "manager":
        assert shown == set() and set(lists.values()) == {403}
    else:
        assert shown == set(SCHEDULE_MODELS) and set(lists.values()) == {200}


def test_a_manager_cannot_reach_a_schedule_row(client, manager):
    # Given an interval schedule, when a manager asks for its page or history, then they are refused
    interval = IntervalSchedule.objects.create(every=7, period="minutes")
    client.force_login(manager)
    for page in ("change", "history", "delete"):
        assert client.get(f"/admin/django_celery_beat/intervalschedule/{interval.pk}/{page}/").status_code == 403


@pytest.mark.parametrize(("every", "period", "sentence"), [
    (30, "seconds", "every 30 seconds"), (1, "seconds", "every second"), (1, "minutes", "every minute"),
    (5, "minutes", "every 5 minutes"), (1, "hours", "every hour"), (2, "days", "every 2 days"),
])
def test_an_interval_reads_as_a_sentence(every, period, sentence):
    interval, _ = IntervalSchedule.objects.get_or_create(every=every, period=period)
    assert periodic_task_sentence(task_with(interval=interval)) == sentence


@pytest.mark.parametrize(("fields", "sentence"), [
    ({"minute": "30", "hour": "2"}, "every day at 02:30 UTC"),
    ({"minute": "40", "hour": "1", "timezone": "Europe/Budapest"}, "every day at 01:40 Europe/Budapest"),
    ({"minute": "5", "hour": "*"}, "every hour at minute 5"),
    ({"minute": "*/15", "hour": "*"}, "every 15 minutes"),
    ({"minute": "*", "hour": "*"}, "every minute"),
    ({"minute": "0", "hour": "9", "day_of_week": "1"}, "every Monday at 09:00 UTC"),
    ({"minute": "0", "hour": "9", "day_of_week": "1,5"}, "every week on Monday and Friday at 09:00 UTC"),
    ({"minute": "0", "hour": "6", "day_of_month": "1"}, "on day 1 of every month at 06:00 UTC"),
    ({"minute": "0", "hour": "8-18/2"},
     "on the schedule “0 8-18/2 * * *” (minute, hour, day of month, month, day of week), UTC"),
])
def test_a_crontab_reads_as_a_sentence(fields, sentence):
    every = {"day_of_week": "*", "day_of_month": "*", "month_of_year": "*"}
    crontab = CrontabSchedule.objects.create(**{**every, **fields})
    assert periodic_task_sentence(task_with(crontab=crontab)) == sentence


def test_a_one_off_and_the_other_kinds_read_as_sentences():
    interval, _ = IntervalSchedule.objects.get_or_create(every=1, period="hours")
    assert periodic_task_sentence(task_with(interval=interval, one_off=True)) == "every hour, once only"
    solar = SolarSchedule.objects.create(event="sunrise", latitude=47.5, longitude=19.04)
    task = PeriodicTask.objects.get(pk=task_with(solar=solar).pk)  # the coordinates as stored: 47.500000
    assert periodic_task_sentence(task) == "at sunrise at latitude 47.5, longitude 19.04"
    budapest_summer = dt.timezone(dt.timedelta(hours=2))
    clocked = ClockedSchedule.objects.create(clocked_time=dt.datetime(2026, 5, 1, 9, 30, tzinfo=budapest_summer))
    assert periodic_task_sentence(task_with(clocked=clocked, one_off=True)) == "once, at 2026-05-01 07:30 UTC"


@pytest.mark.parametrize(("language", "weekly", "several", "sunrise"), [
    ("hu", "hétfőnként 09:00-kor (UTC)", "hétfő és péntek", "napkeltekor, szélesség: 47.5, hosszúság: 19.04"),
    ("fa", "هر دوشنبه ساعت 09:00 به وقت UTC", "دوشنبه و جمعه", "هنگام طلوع آفتاب در عرض جغرافیایی 47.5"),
    ("ar", "كل يوم اثنين الساعة 09:00 بتوقيت UTC", "الاثنين والجمعة", "عند شروق الشمس على خط العرض 47.5"),
])
def test_the_sentences_are_whole_sentences_of_the_readers_language(language, weekly, several, sunrise):
    # Given a weekly crontab, a crontab on two days, and a sunrise schedule
    every = {"minute": "0", "hour": "9", "day_of_month": "*", "month_of_year": "*"}
    monday = task_with(crontab=CrontabSchedule.objects.create(**every, day_of_week="1"))
    two_days = task_with(crontab=CrontabSchedule.objects.create(**every, day_of_week="1,5"))
    solar = PeriodicTask.objects.get(pk=task_with(
        solar=SolarSchedule.objects.create(event="sunrise", latitude=47.5, longitude=19.04)).pk)
    # When a manager reads them in their language
    with translation.override(language):
        sentences = [periodic_task_sentence(t) for t in (monday, two_days, solar)]
    # Then each is a sentence of that language: the day's own form, the language's list, the event in its sentence
    assert sentences[0] == weekly
    assert several in sentences[1]
    assert sentences[2].startswith(sunrise)


def test_the_managers_list_shows_the_projects_schedule_as_sentences(client, manager):
    # Given the project's beat entries (config/schedule.py, ensured after migrate)
    client.force_login(manager)
    # When a manager opens the periodic tasks
    html = client.get(CHANGELIST).content.decode()
    # Then each reads as a sentence, with a Run now button
    sentences = ("every 30 seconds", "every minute", "every hour", "every day at 02:30 UTC", "every day at 01:40 UTC")
    for sentence in sentences:
        assert f">{sentence}<" in html, sentence
    heartbeat = PeriodicTask.objects.get(name="Worker heartbeat")
    assert f'formaction="/admin/django_celery_beat/periodictask/{heartbeat.pk}/run/"' in html


def test_run_now_enqueues_the_task_once_after_commit(client, manager, sent, django_capture_on_commit_callbacks):
    # Given an enabled periodic task with its arguments
    task = PeriodicTask.objects.get(name="KPIs: nightly snapshot refresh")
    client.force_login(manager)
    # When a manager presses Run now
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"{CHANGELIST}{task.pk}/run/", follow=True)
    # Then the task went to the broker exactly once, as beat sends it, and the page says it was queued
    assert sent == [("metrics.refresh", [], json.loads(task.kwargs),
                     {"retry": True, "headers": {"periodic_task_name": task.name}})]
    messages = [str(m) for m in response.context["messages"]]
    assert messages == [f"“{task.name}” was queued: a worker runs it in a moment."]
    # And the admin's history of the task records who ran it
    entry = LogEntry.objects.get(object_id=str(task.pk), user=manager)
    assert "Run now" in entry.get_change_message()


@pytest.mark.parametrize("problem", ["disabled", "unknown"])
def test_run_now_refuses_a_disabled_or_unknown_task(client, manager, sent, django_capture_on_commit_callbacks, problem):
    # Given a disabled task, or one naming a task no worker knows
    task = PeriodicTask.objects.get(name="Worker heartbeat")
    if problem == "disabled":
        task.enabled = False
    else:
        task.task = "core.heartbeet"
    task.save()
    client.force_login(manager)
    # When a manager posts Run now
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"{CHANGELIST}{task.pk}/run/", follow=True)
    # Then nothing is sent, the page says why, and no history row claims a run
    assert sent == []
    message = " ".join(str(m) for m in response.context["messages"])
    assert ("is disabled" if problem == "disabled" else "“core.heartbeet”") in message
    assert not LogEntry.objects.filter(object_id=str(task.pk)).exists()


def test_run_now_is_a_post(client, manager, sent):
    client.force_login(manager)
    task = PeriodicTask.objects.get(name="Worker heartbeat")
    assert client.get(f"{CHANGELIST}{task.pk}/run/").status_code == 405
    assert sent == []


def test_a_disabled_task_has_no_run_now_button(client, manager):
    task = PeriodicTask.objects.get(name="Worker heartbeat")
    PeriodicTask.objects.filter(pk=task.pk).update(enabled=False)
    client.force_login(manager)
    html = client.get(CHANGELIST).content.decode()
    assert f"/periodictask/{task.pk}/run/" not in html


def test_a_manager_edits_a_periodic_task_on_a_page_without_inline_script(client, manager):
    task = PeriodicTask.objects.get(name="Worker heartbeat")
    client.force_login(manager)
    html = client.get(f"{CHANGELIST}{task.pk}/change/").content.decode()
    assert "every 30 seconds" in html
    assert "periodic-task-overrides" not in html  # the package's inline script, which the CSP refuses
