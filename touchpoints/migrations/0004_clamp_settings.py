"""Bring every manager-entered number already stored into the bounds the next migration enforces, so that
adding the CHECK constraints cannot fail on an old row. The bounds are written out here (a migration must
not import the live models): they are touchpoints.models' CADENCE_BOUNDS, STEP_BOUNDS, SETTINGS_BOUNDS and
MAX_MILESTONE as of this migration."""

import re

from django.db import migrations

BOUNDS = {
    "Cadence": {"min_orders": (0, 100_000), "interval_days": (1, 3650), "min_total_spent": (0, None)},
    "CadenceStep": {"offset_days": (0, 3650), "offset_hours": (0, 744)},
    "TouchpointSettings": {"cap_count": (1, 100), "cap_days": (1, 366), "max_attempts": (1, 50),
                           "retry_base_seconds": (1, 21_600), "stale_after_hours": (1, 744)},
}


def clamp(apps, schema_editor):
    for name, fields in BOUNDS.items():
        rows = apps.get_model("touchpoints", name).objects
        for field, (lowest, highest) in fields.items():
            rows.filter(**{f"{field}__lt": lowest}).update(**{field: lowest})
            if highest is not None:
                rows.filter(**{f"{field}__gt": highest}).update(**{field: highest})
    # Milestones: keep the order numbers from 1 to 100000, drop anything else (a milestone cadence left
    # with none is reported by touchpoints.selectors.settings_problems).
    Cadence = apps.get_model("touchpoints", "Cadence")
    for cadence in Cadence.objects.exclude(milestones=""):
        tokens = [x for x in cadence.milestones.replace(" ", "").split(",") if x]
        kept = [x for x in tokens if re.fullmatch("[0-9]+", x) and 0 < int(x) <= 100_000]
        if kept != tokens:
            Cadence.objects.filter(pk=cadence.pk).update(milestones=",".join(kept))


class Migration(migrations.Migration):
    dependencies = [("touchpoints", "0003_scan_order_marks")]
    operations = [migrations.RunPython(clamp, migrations.RunPython.noop)]
