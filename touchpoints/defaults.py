"""Default cadences (one per built-in trigger) and the settings row (the tick's schedule: config/schedule.py).

Created by a migration and ensured again after every migrate (see winback/defaults.py); cadences only
when there are none, so a manager's edits are never touched."""

from decimal import Decimal

from django.apps import apps as global_apps

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


def touchpoints_defaults_ensure(apps=global_apps, **kwargs) -> None:
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
