from django.db import migrations

# Frozen (no live code): the scan's beat entry as it was named when this migration was written.
SCAN = "Lifecycle scan (incremental)"


def create(apps, schema_editor):
    Policy = apps.get_model("winback", "DormancyPolicy")
    if not Policy.objects.exists():
        Policy.objects.create(note="docs/metrics.md defaults")  # no explicit pk: PostgreSQL's sequence must advance
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    hourly, _ = IntervalSchedule.objects.get_or_create(every=1, period="hours")
    PeriodicTask.objects.get_or_create(
        name=SCAN,
        defaults={"task": "winback.lifecycle_scan", "interval": hourly, "kwargs": '{"full": false}',
                  "description": "Customers with new orders or a crossing that came due: events, statuses, cases."},
    )


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=SCAN).delete()


class Migration(migrations.Migration):
    dependencies = [("winback", "0001_initial"), ("django_celery_beat", "0019_alter_periodictasks_options")]
    operations = [migrations.RunPython(create, remove)]
