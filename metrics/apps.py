from django.apps import AppConfig


class MetricsConfig(AppConfig):
    name = "metrics"
    verbose_name = "KPIs"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from metrics.defaults import metrics_defaults_ensure
        from metrics.tasks import refresh_after_scan
        from winback.signals import lifecycle_scanned

        post_migrate.connect(metrics_defaults_ensure, sender=self, dispatch_uid="metrics.defaults")
        lifecycle_scanned.connect(refresh_after_scan, dispatch_uid="metrics.refresh_after_scan")
