"""BusinessSettings moves from metrics to core without touching the table: core takes the model's state
here, metrics 0002 drops it from its own; the rows stay where they are (metrics_businesssettings)."""

from decimal import Decimal

import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("core", "0005_api_tokens_from_authtoken"),
        ("metrics", "0001_snapshots_settings"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="BusinessSettings",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("gross_margin", models.DecimalField(decimal_places=4, default=Decimal("0.3000"), max_digits=5, validators=[django.core.validators.MinValueValidator(Decimal("0")), django.core.validators.MaxValueValidator(Decimal("1"))])),
                        ("currency", models.CharField(default="EUR", max_length=3)),
                        ("updated_at", models.DateTimeField(auto_now=True)),
                    ],
                    options={"db_table": "metrics_businesssettings", "verbose_name": "business settings",
                             "verbose_name_plural": "business settings"},
                ),
            ],
            database_operations=[],
        ),
    ]
