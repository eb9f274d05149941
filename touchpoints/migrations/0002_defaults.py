from django.db import migrations

from touchpoints.defaults import TICK, touchpoints_defaults_ensure


def create(apps, schema_editor):
    touchpoints_defaults_ensure(apps)


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=TICK).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("touchpoints", "0001_initial"),
        ("winback", "0004_queue_defaults"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(create, remove)]
