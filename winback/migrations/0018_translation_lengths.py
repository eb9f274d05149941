import django.db.models.functions.text
import django.db.models.lookups
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("winback", "0017_translated_labels"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="offertranslation",
            constraint=models.CheckConstraint(
                condition=django.db.models.lookups.LessThanOrEqual(django.db.models.functions.text.Length("name"), 100),
                name="offertranslation_name_length"),
        ),
        migrations.AddConstraint(
            model_name="offertranslation",
            constraint=models.CheckConstraint(
                condition=django.db.models.lookups.LessThanOrEqual(django.db.models.functions.text.Length("script"), 300),
                name="offertranslation_script_length"),
        ),
        migrations.AddConstraint(
            model_name="leavereasontranslation",
            constraint=models.CheckConstraint(
                condition=django.db.models.lookups.LessThanOrEqual(django.db.models.functions.text.Length("name"), 80),
                name="leavereasontranslation_name_length"),
        ),
    ]
