"""What the purchase models learnt (one row per fit) and what they say about each customer (one row per
customer, rewritten after each fit). docs/metrics.md section 7 defines every figure."""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from crm.models import Customer


class ModelFit(models.Model):
    """One attempt to fit one model, kept whatever happened: a manager sees how the parameters moved and
    why a fit was not used. The product uses the latest *usable* fit of each model."""

    class Model(models.TextChoices):
        BGNBD = "bgnbd", _("BG/NBD (repeat purchases and dropout)")
        MBGNBD = "mbgnbd", _("MBG/NBD (dropout possible before any repeat purchase)")
        GAMMA_GAMMA = "gamma_gamma", _("Gamma-Gamma (spend per purchase)")

    model = models.CharField(max_length=12, choices=Model.choices)
    fitted_at = models.DateTimeField(help_text=_("When the fit ran."))
    as_of = models.DateTimeField(help_text=_("The fit used the orders before this instant and scored as of it."))
    trigger = models.CharField(max_length=20, help_text=_("What asked for it: the nightly task or the command."))
    customers = models.PositiveIntegerField(default=0, help_text=_("Customers with an order before as_of."))
    repeat_buyers = models.PositiveIntegerField(default=0, help_text=_("Customers with at least one repeat purchase day."))
    purchase_days = models.PositiveBigIntegerField(default=0, help_text=_("Purchase days (a customer's same-day orders are one)."))
    params = models.JSONField(default=dict, blank=True)
    log_likelihood = models.FloatField(null=True, blank=True)
    converged = models.BooleanField(default=False)
    usable = models.BooleanField(default=False, help_text=_("Converged on enough data: the product uses it."))
    reason = models.CharField(max_length=300, blank=True, help_text=_("Why it is not usable, or the optimiser's message."))
    duration_ms = models.PositiveIntegerField(default=0)
    # BG/NBD family: repeat purchases per week, actual and expected, from the first order to the fit
    # (and on, for a fit as of a past instant): {"weeks": [ISO dates], "actual": [...], "expected": [...]}.
    tracking = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["model", "-id"], name="model_fit_usable", condition=Q(usable=True))]

    def __str__(self) -> str:
        return f"{self.get_model_display()} as of {self.as_of:%Y-%m-%d %H:%M}"


class CustomerPrediction(models.Model):
    """The models' view of one customer as of the fit's instant (docs/metrics.md section 7). A customer
    without a row has no prediction (no usable fit yet, or no order before it)."""

    class Source(models.TextChoices):
        BGNBD = "bgnbd", _("BG/NBD")
        MBGNBD = "mbgnbd", _("MBG/NBD (no repeat purchase yet)")

    # No database constraint: the rows are derived, rewritten in bulk after each fit for ids read from
    # crm_customer in the same transaction; an erasure deletes the customer's row (services/privacy.py).
    customer = models.OneToOneField(Customer, primary_key=True, on_delete=models.DO_NOTHING, db_constraint=False,
                                    related_name="prediction")
    fit = models.ForeignKey(ModelFit, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False)
    p_alive = models.FloatField(validators=[MinValueValidator(0), MaxValueValidator(1)])
    p_alive_model = models.CharField(max_length=8, choices=Source.choices)
    expected_purchases_90d = models.FloatField(validators=[MinValueValidator(0)])
    expected_order_value = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    predicted_clv_12m = models.DecimalField(max_digits=16, decimal_places=2, null=True, blank=True)
    scored_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(p_alive__gte=0, p_alive__lte=1), name="prediction_p_alive_in_range"),
            models.CheckConstraint(condition=Q(expected_purchases_90d__gte=0), name="prediction_expected_gte_0"),
        ]

    def __str__(self) -> str:
        return f"P(alive) {self.p_alive:.0%}"
