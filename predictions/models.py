"""What the purchase models learnt (one row per fit) and what they say about each customer (one row per
customer, rewritten after each fit). docs/metrics.md section 7 defines every figure."""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.models import Customer


class ModelFit(models.Model):
    """One attempt to fit one model, kept whatever happened: a manager sees how the parameters moved and
    why a fit was not used. The product uses the latest *usable* fit of each model."""

    class Model(models.TextChoices):
        BGNBD = "bgnbd", _("BG/NBD (repeat purchases and dropout)")
        MBGNBD = "mbgnbd", _("MBG/NBD (dropout possible before any repeat purchase)")
        GAMMA_GAMMA = "gamma_gamma", _("Gamma-Gamma (spend per purchase)")

    model = models.CharField(max_length=12, choices=Model.choices, verbose_name=_("model"))
    fitted_at = models.DateTimeField(help_text=_("When the fit ran."), verbose_name=_("fitted at"))
    as_of = models.DateTimeField(help_text=_("The fit used the orders before this instant and scored as of it."), verbose_name=_("as of"))
    trigger = models.CharField(max_length=20, help_text=_("What asked for it: the nightly task or the command."), verbose_name=_("trigger"))
    customers = models.PositiveIntegerField(default=0, help_text=_("Customers with an order before as_of."), verbose_name=_("customers"))
    repeat_buyers = models.PositiveIntegerField(default=0, help_text=_("Customers with at least one repeat purchase day."), verbose_name=_("repeat buyers"))
    purchase_days = models.PositiveBigIntegerField(default=0, help_text=_("Purchase days (a customer's same-day orders are one)."), verbose_name=_("purchase days"))
    params = models.JSONField(default=dict, blank=True, verbose_name=_("parameters"))
    log_likelihood = models.FloatField(null=True, blank=True, verbose_name=_("log-likelihood"))
    converged = models.BooleanField(default=False, verbose_name=_("converged"))
    usable = models.BooleanField(default=False, help_text=_("Converged on enough data: the product uses it."), verbose_name=_("usable"))
    reason = models.CharField(max_length=300, blank=True, help_text=_("Why it is not usable, or the optimiser's message."), verbose_name=_("reason"))
    duration_ms = models.PositiveIntegerField(default=0, verbose_name=_("duration (ms)"))
    # BG/NBD family: repeat purchases per week, actual and expected, from the first order to the fit
    # (and on, for a fit as of a past instant): {"weeks": [ISO dates], "actual": [...], "expected": [...]}.
    tracking = models.JSONField(default=dict, blank=True, verbose_name=_("tracking"))

    class Meta:
        ordering = ["-id"]
        verbose_name = _("model fit")
        verbose_name_plural = _("model fits")
        indexes = [models.Index(fields=["model", "-id"], name="model_fit_usable", condition=Q(usable=True))]

    def __str__(self) -> str:
        return gettext("%(model)s as of %(time)s") % {"model": self.get_model_display(), "time": f"{self.as_of:%Y-%m-%d %H:%M}"}


class CustomerPrediction(models.Model):
    """The models' view of one customer as of the fit's instant (docs/metrics.md section 7). A customer
    without a row has no prediction (no usable fit yet, or no order before it)."""

    class Source(models.TextChoices):
        BGNBD = "bgnbd", _("BG/NBD")
        MBGNBD = "mbgnbd", _("MBG/NBD (no repeat purchase yet)")

    # No database constraint: the rows are derived, rewritten in bulk after each fit for ids read from
    # crm_customer in the same transaction; an erasure deletes the customer's row (services/privacy.py).
    customer = models.OneToOneField(Customer, primary_key=True, on_delete=models.DO_NOTHING, db_constraint=False,
                                    related_name="prediction", verbose_name=_("customer"))
    fit = models.ForeignKey(ModelFit, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False, verbose_name=_("model fit"))
    p_alive = models.FloatField(validators=[MinValueValidator(0), MaxValueValidator(1)], verbose_name=_("P(alive)"))
    p_alive_model = models.CharField(max_length=8, choices=Source.choices, verbose_name=_("P(alive) model"))
    expected_purchases_90d = models.FloatField(validators=[MinValueValidator(0)], verbose_name=_("expected purchases in 90 days"))
    expected_order_value = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True, verbose_name=_("expected order value"))
    predicted_clv_12m = models.DecimalField(max_digits=16, decimal_places=2, null=True, blank=True, verbose_name=_("predicted 12-month CLV"))
    scored_at = models.DateTimeField(verbose_name=_("scored at"))

    class Meta:
        verbose_name = _("customer prediction")
        verbose_name_plural = _("customer predictions")
        constraints = [
            models.CheckConstraint(condition=Q(p_alive__gte=0, p_alive__lte=1), name="prediction_p_alive_in_range"),
            models.CheckConstraint(condition=Q(expected_purchases_90d__gte=0), name="prediction_expected_gte_0"),
        ]

    def __str__(self) -> str:
        return gettext("P(alive) %(percent)s") % {"percent": f"{self.p_alive:.0%}"}
