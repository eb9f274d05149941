from django.db import models
from django.utils.translation import gettext_lazy as _


class MetricSnapshot(models.Model):
    """One metric for one period, as computed at ``computed_at``. Refilling a period replaces its rows."""

    metric = models.CharField(max_length=40)
    start = models.DateField()
    end = models.DateField(help_text=_("Exclusive: the period is [start, end)."))
    value = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True,
                                help_text=_("Empty when the denominator is zero (shown as n/a)."))
    numerator = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    denominator = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    extra = models.JSONField(default=dict, blank=True, help_text=_("E.g. the confidence interval."))
    computed_at = models.DateTimeField()

    class Meta:
        ordering = ["metric", "start"]
        # Its admin page is the KPI dashboard.
        verbose_name = _("KPI")
        verbose_name_plural = _("KPIs")
        constraints = [models.UniqueConstraint(fields=["metric", "start", "end"], name="metric_snapshot_unique")]
        indexes = [models.Index(fields=["start", "end"], name="metric_snapshot_period")]

    def __str__(self) -> str:
        return f"{self.metric} {self.start}..{self.end}"
