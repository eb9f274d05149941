from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WinbackConfig(AppConfig):
    name = "winback"
    verbose_name = _("Win-back")

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from winback import timeline
        from winback.defaults import winback_defaults_ensure
        from winback.services.lifecycle import lifecycle_batches_register

        post_migrate.connect(winback_defaults_ensure, sender=self, dispatch_uid="winback.defaults")
        timeline.register()  # its part of the customer page (crm.timeline)
        lifecycle_batches_register()  # the scan's batches (core.batches)
