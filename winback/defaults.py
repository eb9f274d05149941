"""The rows the product needs to work: the dormancy policy, reasons for leaving, offers, call settings.

Created by migrations, and ensured again after every migrate (a test database flush empties the tables; an
install restored from a partial dump lacks them). Lists are created only when empty, so a manager's own
reasons and offers are never touched. (The beat schedule is config/schedule.py's.)"""

from django.apps import apps as global_apps

REASONS = [
    "Price", "Product quality", "Service or support", "Felt unappreciated", "Competitor offer", "Delivery",
    "Billing", "Moved or no longer needed", "Other",
]
OFFERS = [
    ("10% off the next order", "Ten percent off your next order, valid for 30 days.", "BACK10", 30),
    ("Free delivery", "Free delivery on your next order, valid for 30 days.", "SHIP", 30),
]


def winback_defaults_ensure(apps=global_apps, **kwargs) -> None:
    get = apps.get_model
    if not get("winback", "DormancyPolicy").objects.exists():
        get("winback", "DormancyPolicy").objects.create(note="docs/metrics.md defaults")
    if not get("winback", "LeaveReason").objects.exists():
        for position, name in enumerate(REASONS):
            get("winback", "LeaveReason").objects.create(name=name, position=position)
    get("winback", "CallSettings").objects.get_or_create(pk=1)
    if not get("winback", "Offer").objects.exists():
        for name, script, prefix, days in OFFERS:
            get("winback", "Offer").objects.create(name=name, script=script, code_prefix=prefix, valid_days=days)
