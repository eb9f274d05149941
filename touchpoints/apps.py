from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TouchpointsConfig(AppConfig):
    name = "touchpoints"
    verbose_name = _("Touchpoints")

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from touchpoints import checks, timeline  # noqa: F401  (checks registers the deploy check)
        from touchpoints.defaults import touchpoints_defaults_ensure

        post_migrate.connect(touchpoints_defaults_ensure, sender=self, dispatch_uid="touchpoints.defaults")
        timeline.register()  # its part of the customer page (crm.timeline)
