from django.apps import AppConfig


class WinbackConfig(AppConfig):
    name = "winback"
    verbose_name = "Win-back"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from crm.signals import history_changed
        from winback.defaults import winback_defaults_ensure
        from winback.receivers import refresh_lifecycle_after_commit

        post_migrate.connect(winback_defaults_ensure, sender=self, dispatch_uid="winback.defaults")
        history_changed.connect(refresh_lifecycle_after_commit, dispatch_uid="winback.refresh_lifecycle")
