import django.core.validators
from decimal import Decimal
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('core', '0009_business_digits'),
    ]

    operations = [
        migrations.AddField(
            model_name='businesssettings',
            name='upsell_threshold',
            field=models.DecimalField(decimal_places=4, default=Decimal('0.2000'), help_text="Up-sell: how far above their mean order value of the 12 months before a period a customer's mean order value in the period must be, at least (0.20 = 20% more).", max_digits=6, validators=[django.core.validators.MinValueValidator(Decimal('0')), django.core.validators.MaxValueValidator(Decimal('10'))]),
        ),
        migrations.AddConstraint(
            model_name='businesssettings',
            constraint=models.CheckConstraint(condition=models.Q(('upsell_threshold__gte', Decimal('0')), ('upsell_threshold__lte', Decimal('10'))), name='businesssettings_upsell_threshold_in_range'),
        ),
    ]
