from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = _("Operations")

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from core import tasks  # noqa: F401 - registers the batch tasks, which core.batches sends by name
        from core.roles import roles_sync_permissions

        # Every app: model permissions appear per app, after that app migrates.
        post_migrate.connect(roles_sync_permissions, dispatch_uid="core.roles_sync_permissions")

