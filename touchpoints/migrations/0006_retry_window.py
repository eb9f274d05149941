# Temporary errors are retried for a window of time (TOUCHPOINT_RETRY_WINDOW_HOURS) instead of a number of
# attempts: max_attempts goes; each touchpoint keeps when it is tried next and since when it has been failing.

import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('touchpoints', '0005_setting_bounds'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='touchpointsettings',
            name='touchpointsettings_max_attempts_in_range',
        ),
        migrations.RemoveField(
            model_name='touchpointsettings',
            name='max_attempts',
        ),
        migrations.AddField(
            model_name='touchpoint',
            name='retry_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='touchpoint',
            name='retry_since',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name='touchpoint',
            name='reason',
            field=models.CharField(blank=True, choices=[('no_email', 'No email address'), ('no_phone', 'No phone number'), ('no_consent', 'No marketing consent'), ('opted_out', 'Opted out'), ('do_not_call', 'Do not call'), ('holdout', 'In the holdout (never contacted)'), ('case_in_progress', 'An agent is working their case'), ('open_complaint', 'Open complaint (routed to a recovery call)'), ('frequency_cap', 'Frequency cap reached'), ('quiet_hours', 'Quiet hours (deferred)'), ('no_longer_applies', 'No longer applies'), ('disabled', 'Cadence or step disabled'), ('expired', 'Too late to send'), ('mail_server', 'Waiting for the mail server'), ('temporary_error', 'Temporary error (retrying)')], help_text='Why it was suppressed, cancelled or last deferred.', max_length=20),
        ),
        migrations.AlterField(
            model_name='touchpointsettings',
            name='retry_base_seconds',
            field=models.PositiveIntegerField(default=60, help_text='After a temporary error the first retry waits this long, each next one twice as long, up to TOUCHPOINT_RETRY_MAX_DELAY_SECONDS; retries go on for TOUCHPOINT_RETRY_WINDOW_HOURS.', validators=[django.core.validators.MinValueValidator(1), django.core.validators.MaxValueValidator(21600)]),
        ),
        migrations.AddIndex(
            model_name='touchpoint',
            index=models.Index(condition=models.Q(('reason', 'mail_server'), ('status', 'scheduled')), fields=['retry_at'], name='touchpoint_waiting_server'),
        ),
        migrations.AddIndex(
            model_name='touchpoint',
            index=models.Index(condition=models.Q(('retry_since__isnull', False), ('status__in', ['scheduled', 'sending'])), fields=['customer', 'channel', 'due_at'], name='touchpoint_customer_retrying'),
        ),
    ]
