from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = _("Customers")

    def ready(self) -> None:
        from crm.services.import_orders import import_orders_register

        import_orders_register()  # the orders import's batches (core.batches)
