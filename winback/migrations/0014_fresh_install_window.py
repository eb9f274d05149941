"""A fresh install starts with the window rule (winback/defaults.py says why). Only a fresh install: an install
with orders, or whose policy a manager has changed, keeps its policy (tune_lapse_rule will say whether
another rule does better on its orders)."""

from django.db import migrations

# Frozen: the values as they were when this migration was written.
RULE = "window"
NOTE = "Fresh install: one window for everyone (README, the CDNOW evaluation)"


def create(apps, schema_editor):
    Policy = apps.get_model("winback", "DormancyPolicy")
    untouched = Policy.objects.count() == 1 and Policy.objects.filter(created_by__isnull=True, rule="rhythm").exists()
    if untouched and not apps.get_model("crm", "Order").objects.exists():
        Policy.objects.create(note=NOTE, rule=RULE)


class Migration(migrations.Migration):
    dependencies = [("winback", "0013_rule_tuning"), ("crm", "0005_privacy_suppression")]
    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
