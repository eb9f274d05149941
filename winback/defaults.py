"""The rows the product needs to work: the dormancy policy, reasons for leaving, offers, call settings.

Created by migrations, and ensured again after every migrate (a test database flush empties the tables; an
install restored from a partial dump lacks them). Lists are created only when empty, so a manager's own
reasons and offers are never touched. (The beat schedule is config/schedule.py's.)"""

from django.apps import apps as global_apps

# A fresh install lapses a customer after default_days without an order, for everyone: on CDNOW (README,
# "Does the flag pick the right customers?") that window wins the backtest among repeat buyers at equal flag
# rate over every rule a policy can run without history, and at each rule's own flag it beats the rhythm rule
# (F1 0.555 vs 0.456 among repeat buyers). tune_lapse_rule says when another rule does better on the
# business's own orders.
FRESH_INSTALL_RULE = "window"
FRESH_INSTALL_NOTE = "Fresh install: one window for everyone (README, the CDNOW evaluation)"

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
        get("winback", "DormancyPolicy").objects.create(note=FRESH_INSTALL_NOTE, rule=FRESH_INSTALL_RULE)
    if not get("winback", "LeaveReason").objects.exists():
        for position, name in enumerate(REASONS):
            get("winback", "LeaveReason").objects.create(name=name, position=position)
    get("winback", "CallSettings").objects.get_or_create(pk=1)
    if not get("winback", "Offer").objects.exists():
        for name, script, prefix, days in OFFERS:
            get("winback", "Offer").objects.create(name=name, script=script, code_prefix=prefix, valid_days=days)
