from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PipelineConfig(AppConfig):
    """The top of the import graph: connects the pipeline and ensures the beat schedule."""

    name = "config"
    label = "pipeline"
    verbose_name = _("Pipeline")

    def ready(self) -> None:
        from django.apps import apps
        from django.conf import settings
        from django.db.models.signals import post_migrate

        from config.settings.folders import var_folders_ensure

        from config.pipeline import pipeline_connect
        from config.schedule import beat_schedule_ensure

        var_folders_ensure(settings)
        pipeline_connect()
        # Sent per app with models (this one has none): after the schedule's own tables are migrated.
        post_migrate.connect(beat_schedule_ensure, sender=apps.get_app_config("django_celery_beat"),
                             dispatch_uid="pipeline.beat_schedule")
