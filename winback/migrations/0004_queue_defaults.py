from django.db import migrations

# Frozen (no live code): the default reasons and offers as they were when this migration was written.
REASONS = [
    "Price", "Product quality", "Service or support", "Felt unappreciated", "Competitor offer", "Delivery",
    "Billing", "Moved or no longer needed", "Other",
]
OFFERS = [
    ("10% off the next order", "Ten percent off your next order, valid for 30 days.", "BACK10", 30),
    ("Free delivery", "Free delivery on your next order, valid for 30 days.", "SHIP", 30),
]


def seed(apps, schema_editor):
    LeaveReason = apps.get_model("winback", "LeaveReason")
    for position, name in enumerate(REASONS):
        LeaveReason.objects.get_or_create(name=name, defaults={"position": position})
    apps.get_model("winback", "CallSettings").objects.get_or_create(pk=1)
    Offer = apps.get_model("winback", "Offer")
    for name, script, prefix, days in OFFERS:
        Offer.objects.get_or_create(name=name, defaults={"script": script, "code_prefix": prefix, "valid_days": days})


class Migration(migrations.Migration):
    dependencies = [("winback", "0003_callsettings_disposition_leavereason_offer_and_more")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
