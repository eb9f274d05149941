from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("winback", "0017_translated_labels"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="offertranslation",
            constraint=models.CheckConstraint(
                condition=models.Q(("name__length__lte", 100), ("script__length__lte", 300)),
                name="offertranslation_lengths"),
        ),
        migrations.AddConstraint(
            model_name="leavereasontranslation",
            constraint=models.CheckConstraint(condition=models.Q(("name__length__lte", 80)),
                                              name="leavereasontranslation_name_length"),
        ),
    ]
