from django.db import migrations

from winback.defaults import OFFERS, REASONS


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
