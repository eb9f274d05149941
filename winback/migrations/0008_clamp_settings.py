"""Bring every manager-entered number already stored into the bounds the next migration enforces, so that
adding the CHECK constraints cannot fail on an old row. The bounds are written out here (a migration must
not import the live models): they are winback.models' POLICY_BOUNDS, CALL_BOUNDS and OFFER_BOUNDS as of
this migration."""

from decimal import Decimal

from django.db import migrations
from django.db.models import F

BOUNDS = {
    "DormancyPolicy": {"k": (Decimal("0.01"), Decimal("10")), "at_risk_k": (Decimal("0.01"), Decimal("10")),
                       "default_days": (1, 3650), "min_days": (1, 3650), "max_days": (1, 3650),
                       "holdout_share": (Decimal("0"), Decimal("0.5")), "attribution_window_days": (1, 3650)},
    "CallSettings": {"max_attempts": (1, 100), "gap_no_answer_minutes": (0, 44_640), "gap_busy_minutes": (0, 44_640),
                     "gap_voicemail_minutes": (0, 44_640), "gap_escalated_minutes": (0, 44_640),
                     "lease_minutes": (1, 1440), "callback_grace_minutes": (0, 44_640)},
    "Offer": {"valid_days": (1, 3650)},
}


def clamp(apps, schema_editor):
    for name, fields in BOUNDS.items():
        rows = apps.get_model("winback", name).objects
        for field, (lowest, highest) in fields.items():
            rows.filter(**{f"{field}__lt": lowest}).update(**{field: lowest})
            rows.filter(**{f"{field}__gt": highest}).update(**{field: highest})
    apps.get_model("winback", "DormancyPolicy").objects.filter(min_days__gt=F("max_days")).update(min_days=F("max_days"))


class Migration(migrations.Migration):
    dependencies = [("winback", "0007_case_indexes_for_queue_writes")]
    operations = [migrations.RunPython(clamp, migrations.RunPython.noop)]
