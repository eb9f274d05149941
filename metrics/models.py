from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class BusinessSettings(models.Model):
    """Business figures the KPIs need that the data does not hold (one row, managers edit it)."""

    gross_margin = models.DecimalField(
        max_digits=5, decimal_places=4, default=Decimal("0.3000"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("1"))],
        help_text="Gross margin as a fraction of revenue (0.30 = 30%), used by historical CLV and lost profit.",
    )
    currency = models.CharField(max_length=3, default="EUR", help_text="Shown beside revenue figures.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = verbose_name_plural = "business settings"

    def __str__(self) -> str:
        return f"Margin {self.gross_margin:.0%}"


class MetricSnapshot(models.Model):
    """One metric for one period, as computed at ``computed_at``. Refilling a period replaces its rows."""

    metric = models.CharField(max_length=40)
    start = models.DateField()
    end = models.DateField(help_text="Exclusive: the period is [start, end).")
    value = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True,
                                help_text="Empty when the denominator is zero (shown as n/a).")
    numerator = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    denominator = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    extra = models.JSONField(default=dict, blank=True, help_text="E.g. the confidence interval.")
    computed_at = models.DateTimeField()

    class Meta:
        ordering = ["metric", "start"]
        # Its admin page is the KPI dashboard.
        verbose_name = "KPI"
        verbose_name_plural = "KPIs"
        constraints = [models.UniqueConstraint(fields=["metric", "start", "end"], name="metric_snapshot_unique")]
        indexes = [models.Index(fields=["start", "end"], name="metric_snapshot_period")]

    def __str__(self) -> str:
        return f"{self.metric} {self.start}..{self.end}"
