from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from core.locale_format import BUSINESS_DIGITS_CACHE_KEY, DIGITS_LATIN, DIGITS_NATIVE


class Heartbeat(models.Model):
    """The last time beat enqueued and a worker ran the heartbeat task: proof both are alive."""

    name = models.CharField(max_length=50, unique=True)
    beat_at = models.DateTimeField()
    worker = models.CharField(max_length=200, blank=True)

    def __str__(self) -> str:
        return f"{self.name} @ {self.beat_at:%Y-%m-%d %H:%M:%S}"


class EnqueueFailure(models.Model):
    """Tasks the broker refused after a commit, per task name: the write went through, a periodic sweep does
    the work later, and /health/ shows that it happened (a count, the last time and the last error)."""

    task = models.CharField(max_length=200, unique=True)
    count = models.PositiveBigIntegerField(default=0)
    last_at = models.DateTimeField()
    last_error = models.CharField(max_length=500, blank=True)

    def __str__(self) -> str:
        return f"{self.task}: {self.count} refused, last {self.last_at:%Y-%m-%d %H:%M:%S}"


# The bounds of the business figures, shared by the model, the admin and the database.
BUSINESS_BOUNDS = {
    "gross_margin": (Decimal("0"), Decimal("1")),
    # 20% a month is already a ruinous cost of capital; beyond it a 12-month CLV means nothing.
    "monthly_discount_rate": (Decimal("0"), Decimal("0.2")),
    # A customer spending 11 times their usual order is an outlier, not a threshold anyone would set.
    "upsell_threshold": (Decimal("0"), Decimal("10")),
}


class Digits(models.TextChoices):
    LATIN = DIGITS_LATIN, _("Latin digits (0123456789)")
    # Translators: the digits setting of Arabic and Persian text; keep the digits as they are.
    NATIVE = DIGITS_NATIVE, _("The language's own digits (Arabic ٠١٢٣٤٥٦٧٨٩, Persian ۰۱۲۳۴۵۶۷۸۹)")


class BusinessSettings(models.Model):
    """Business figures that the data does not hold (one row, managers edit it): the KPIs and the purchase
    predictions both read them, so they live in the lowest app. The table keeps its first name
    (metrics_businesssettings): it moved here without a copy (core 0006, metrics 0002)."""

    gross_margin = models.DecimalField(
        max_digits=5, decimal_places=4, default=Decimal("0.3000"),
        validators=[MinValueValidator(BUSINESS_BOUNDS["gross_margin"][0]), MaxValueValidator(BUSINESS_BOUNDS["gross_margin"][1])],
        help_text=_("Gross margin as a fraction of revenue (0.30 = 30%), used by historical and predicted CLV and lost profit."),
    )
    monthly_discount_rate = models.DecimalField(
        max_digits=5, decimal_places=4, default=Decimal("0.0100"),
        validators=[MinValueValidator(BUSINESS_BOUNDS["monthly_discount_rate"][0]),
                    MaxValueValidator(BUSINESS_BOUNDS["monthly_discount_rate"][1])],
        help_text=_("Monthly discount rate of the predicted 12-month CLV (0.01 = 1% a month)."),
    )
    currency = models.CharField(max_length=3, default="EUR", help_text=_("Shown beside revenue figures."))
    upsell_threshold = models.DecimalField(
        max_digits=6, decimal_places=4, default=Decimal("0.2000"),
        validators=[MinValueValidator(BUSINESS_BOUNDS["upsell_threshold"][0]),
                    MaxValueValidator(BUSINESS_BOUNDS["upsell_threshold"][1])],
        help_text=_("Up-sell: how far above their mean order value of the 12 months before a period a customer's "
                    "mean order value in the period must be, at least (0.20 = 20% more)."),
    )
    # Translators: the setting's label: which digits numbers are written in (Latin 123 or Arabic/Persian ones).
    digits = models.CharField(
        _("digits"), max_length=10, choices=Digits.choices, default=Digits.LATIN,
        help_text=_("The digits of Arabic and Persian dates, numbers and amounts, on the pages and in the "
                    "messages to customers: Latin (123) or the language's own (Arabic ١٢٣, Persian ۱۲۳)."),
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "metrics_businesssettings"
        verbose_name = verbose_name_plural = _("business settings")
        constraints = [
            *(models.CheckConstraint(condition=Q(**{f"{field}__gte": low, f"{field}__lte": high}),
                                     name=f"businesssettings_{field}_in_range")
              for field, (low, high) in BUSINESS_BOUNDS.items()),
            models.CheckConstraint(condition=Q(digits__in=Digits.values), name="businesssettings_digits_known"),
        ]

    def __str__(self) -> str:
        return f"Margin {self.gross_margin:.0%}"

    def save(self, *args, **kwargs) -> None:
        super().save(*args, **kwargs)
        # Dates and amounts read the digits through the cache (core.locale_format): the change shows at once.
        cache.delete(BUSINESS_DIGITS_CACHE_KEY)

    def delete(self, *args, **kwargs):
        result = super().delete(*args, **kwargs)
        cache.delete(BUSINESS_DIGITS_CACHE_KEY)
        return result



# The languages a person may choose: settings.LANGUAGES, "" for the browser's (Accept-Language, or the cookie).
LANGUAGE_CODES = tuple(code for code, _name in settings.LANGUAGES)


class UserPreference(models.Model):
    """A person's own settings (agents and managers): today the language of their pages."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="preference")
    language = models.CharField(
        max_length=10, blank=True, choices=settings.LANGUAGES,
        help_text=_("The language of this person's pages; blank follows their browser's."))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("user preference")
        verbose_name_plural = _("user preferences")
        constraints = [
            models.CheckConstraint(condition=Q(language__in=("", *LANGUAGE_CODES)), name="userpreference_language_known"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.language or 'browser'}"


class BatchRun(models.Model):
    """One run of a batch job (a full lifecycle scan, a 36-month KPI refresh, a large import): its parts run as
    independent tasks on the workers, or in one process with ``--inline``; the row shows how far it got."""

    class Status(models.TextChoices):
        RUNNING = "running", _("running")
        FINISHING = "finishing", _("finishing")
        DONE = "done", _("done")
        FAILED = "failed", _("failed")

    kind = models.CharField(_("kind"), max_length=64)
    label = models.CharField(_("label"), max_length=200, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.RUNNING)
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    parts_total = models.PositiveIntegerField(_("batches"), default=0)
    parts_done = models.PositiveIntegerField(_("batches done"), default=0)
    result = models.JSONField(_("result"), default=dict, blank=True)
    error = models.TextField(_("error"), blank=True)
    inline = models.BooleanField(_("in one process"), default=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("started by"), null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(_("started at"), auto_now_add=True)
    # The last progress (a batch done, the finish started): the resume sweep looks for runs that stopped moving.
    updated_at = models.DateTimeField(_("last progress"), auto_now=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("batch run")
        verbose_name_plural = _("batch runs")
        ordering = ("-created_at", "-id")
        indexes = [models.Index(fields=["status", "created_at"], name="core_batchrun_status")]
        constraints = [
            models.CheckConstraint(condition=Q(parts_done__lte=models.F("parts_total")), name="core_batchrun_done_le_total"),
            models.CheckConstraint(condition=Q(status__in=["running", "finishing", "done", "failed"]),
                                   name="core_batchrun_status_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.label or self.kind} #{self.pk}: {self.parts_done}/{self.parts_total} ({self.status})"


class BatchRunPart(models.Model):
    """One batch of a run. ``done_at`` is set in the same transaction as the batch's work: a batch that ran
    twice (a redelivered task, the resume sweep) finds it set and does nothing."""

    run = models.ForeignKey(BatchRun, on_delete=models.CASCADE, related_name="parts", verbose_name=_("run"))
    index = models.PositiveIntegerField(_("number"))
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    done_at = models.DateTimeField(_("done at"), null=True, blank=True)
    result = models.JSONField(_("result"), null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        verbose_name = _("batch")
        verbose_name_plural = _("batches")
        ordering = ("run", "index")
        constraints = [models.UniqueConstraint(fields=["run", "index"], name="core_batchrunpart_unique")]

    def __str__(self) -> str:
        return f"{self.run_id}/{self.index}"
