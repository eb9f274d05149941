from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from core.admin_mixins import ReadOnlyAdminMixin
from predictions.models import ModelFit


@admin.register(ModelFit)
class ModelFitAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every fit attempt, usable or not: how the parameters moved and why a fit was not used."""

    list_display = ("id", "model", "as_of", "fitted_at", "trigger", "customers", "repeat_buyers", "parameters",
                    "log_likelihood", "converged", "usable", "reason", "duration_ms")
    list_filter = ("model", "usable", "converged", "trigger")
    date_hierarchy = "as_of"
    exclude = ("tracking",)

    @admin.display(description=_("Parameters"))
    def parameters(self, obj: ModelFit) -> str:
        return ", ".join(f"{name} = {value:.4g}" for name, value in obj.params.items()) or "-"
