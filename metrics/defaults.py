from django.apps import apps as global_apps

NIGHTLY = "KPIs: nightly snapshot refresh"


def metrics_defaults_ensure(apps=global_apps, **kwargs) -> None:
    apps.get_model("metrics", "BusinessSettings").objects.get_or_create(pk=1)
    Crontab = apps.get_model("django_celery_beat", "CrontabSchedule")
    nightly, _ = Crontab.objects.get_or_create(minute="30", hour="2", day_of_week="*", day_of_month="*", month_of_year="*")
    apps.get_model("django_celery_beat", "PeriodicTask").objects.get_or_create(name=NIGHTLY, defaults={
        "task": "metrics.refresh", "crontab": nightly, "kwargs": '{"months": 36}',
        "description": "Every KPI for the last 36 months into snapshots (re-runnable: a month is replaced, never added).",
    })
