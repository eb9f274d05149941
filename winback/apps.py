from django.apps import AppConfig


class WinbackConfig(AppConfig):
    name = "winback"
    verbose_name = "Win-back"

    def ready(self) -> None:
        from crm.signals import history_changed
        from winback.receivers import refresh_lifecycle_after_commit

        history_changed.connect(refresh_lifecycle_after_commit, dispatch_uid="winback.refresh_lifecycle")
