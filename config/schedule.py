"""The beat schedule, declared once: every periodic task, with why it runs when it does.

Ensured after every migrate (a new install, a flushed test database): an entry is created when missing and
never overwritten, so a manager's change in the admin (Periodic tasks) stands.
"""

import json
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps as global_apps


@dataclass(frozen=True)
class BeatEntry:
    name: str
    task: str
    description: str
    every: tuple[int, str] | None = None  # (count, "seconds" | "minutes" | "hours")
    crontab: dict[str, str] = field(default_factory=dict)
    kwargs: dict[str, Any] = field(default_factory=dict)


BEAT_SCHEDULE = (
    BeatEntry("Worker heartbeat", "core.heartbeat", every=(30, "seconds"), kwargs={"name": "worker"},
              description="Proves beat and a worker are alive; /health/ reports its age."),
    BeatEntry("Batch runs: resume stalled ones", "core.batch_runs_resume", every=(10, "minutes"),
              description="Re-sends the batches of a run that stopped moving (a refused enqueue, a lost worker)."),
    BeatEntry("Touchpoints: materialise and dispatch", "touchpoints.tick", every=(1, "minutes"),
              description="New orders, events, complaints and answers become touchpoints; due ones go to the workers."),
    BeatEntry("Lifecycle scan (incremental)", "winback.lifecycle_scan", every=(1, "hours"), kwargs={"full": False},
              description="Customers with new orders or a crossing that came due: events, statuses, cases."),
    BeatEntry("Predictions: nightly model fit", "predictions.fit",
              crontab={"minute": "40", "hour": "1", "day_of_week": "*", "day_of_month": "*", "month_of_year": "*"},
              description="BG/NBD, MBG/NBD and Gamma-Gamma refitted on the whole history, every customer rescored; "
                          "before the KPI refresh, which shows the predicted CLV."),
    BeatEntry("KPIs: nightly snapshot refresh", "metrics.refresh", kwargs={"months": 36},
              crontab={"minute": "30", "hour": "2", "day_of_week": "*", "day_of_month": "*", "month_of_year": "*"},
              description="Every KPI for the last 36 months into snapshots (re-runnable: a month is replaced, never added)."),
)


def beat_schedule_ensure(apps=global_apps, **kwargs: Any) -> None:
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for entry in BEAT_SCHEDULE:
        if entry.every:
            count, period = entry.every
            when = {"interval": apps.get_model("django_celery_beat", "IntervalSchedule").objects.get_or_create(
                every=count, period=period)[0]}
        else:
            when = {"crontab": apps.get_model("django_celery_beat", "CrontabSchedule").objects.get_or_create(
                **entry.crontab)[0]}
        PeriodicTask.objects.get_or_create(name=entry.name, defaults={
            "task": entry.task, "kwargs": json.dumps(entry.kwargs), "description": entry.description, **when})
