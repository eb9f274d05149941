from decimal import Decimal

from django.db import migrations

# Frozen (no live code): the default cadences and the tick's beat entry as they were when this migration was
# written (touchpoints/defaults.py and config/schedule.py keep the live ones).
TICK = "Touchpoints: materialise and dispatch"

# (name, trigger, marketing, extra fields, [(offset_days, offset_hours, channel, template, offer prefix)])
CADENCES = [
    ("Order thank-you", "order", False, {}, [(0, 0, "email", "thank_you", None)]),
    ("Order follow-up", "order", True, {}, [(7, 0, "email", "order_follow_up", None)]),
    ("Loyalty milestones", "milestone", True, {"milestones": "5,10,25,50,100"}, [(0, 1, "email", "milestone", None)]),
    ("Customer anniversary", "anniversary", True, {}, [(0, 0, "email", "anniversary", None)]),
    ("Check-ins for valued customers", "checkin", True,
     {"interval_days": 90, "min_orders": 3, "min_total_spent": Decimal("500")}, [(0, 0, "email", "checkin", None)]),
    ("At-risk appreciation", "at_risk", True, {}, [(0, 2, "email", "appreciation", None)]),
    ("Win-back sequence", "lapsed", True, {}, [
        (0, 2, "email", "winback_miss_you", None),
        (7, 0, "email", "winback_offer", "BACK10"),
        (21, 0, "email", "winback_last_chance", None),
    ]),
    ("After a resolved complaint", "complaint_resolved", True, {}, [(1, 0, "email", "complaint_follow_up", None)]),
    ("NPS detractor call", "nps_detractor", False, {}, [(0, 0, "call", "", None)]),
]


def create(apps, schema_editor):
    Cadence = apps.get_model("touchpoints", "Cadence")
    Step = apps.get_model("touchpoints", "CadenceStep")
    Offer = apps.get_model("winback", "Offer")
    apps.get_model("touchpoints", "TouchpointSettings").objects.get_or_create(pk=1)
    if not Cadence.objects.exists():
        for name, trigger, marketing, extra, steps in CADENCES:
            cadence = Cadence.objects.create(name=name, trigger=trigger, marketing=marketing, **extra)
            for position, (days, hours, channel, template, prefix) in enumerate(steps, start=1):
                offer = Offer.objects.filter(code_prefix=prefix).first() if prefix else None
                Step.objects.create(cadence=cadence, position=position, offset_days=days, offset_hours=hours,
                                    channel=channel, template=template, offer=offer)
    every_minute, _ = apps.get_model("django_celery_beat", "IntervalSchedule").objects.get_or_create(every=1, period="minutes")
    apps.get_model("django_celery_beat", "PeriodicTask").objects.get_or_create(name=TICK, defaults={
        "task": "touchpoints.tick", "interval": every_minute,
        "description": "New orders, events, complaints and answers become touchpoints; due ones go to the workers.",
    })


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=TICK).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("touchpoints", "0001_initial"),
        ("winback", "0004_queue_defaults"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(create, remove)]
