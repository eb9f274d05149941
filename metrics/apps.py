from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MetricsConfig(AppConfig):
    name = "metrics"
    verbose_name = _("KPIs")

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from metrics.defaults import metrics_defaults_ensure
        from metrics.services.drilldown import drilldowns_register
        from metrics.services.snapshots import refresh_batches_register

        post_migrate.connect(metrics_defaults_ensure, sender=self, dispatch_uid="metrics.defaults")
        drilldowns_register()  # the admin lists behind the KPI pages' counts (core.drilldown)
        refresh_batches_register()  # the snapshot refresh's batches (core.batches)
