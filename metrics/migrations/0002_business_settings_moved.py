"""BusinessSettings now belongs to core (core 0006): only the model's state leaves metrics, not the table."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("metrics", "0001_snapshots_settings"),
        ("core", "0006_business_settings_moved"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="BusinessSettings")],
            database_operations=[],
        ),
    ]
