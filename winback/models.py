import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Length
from django.db.models.lookups import LessThanOrEqual
from django.utils.translation import gettext, gettext_lazy as _

from core.bounds import MAX_SETTING_DAYS, MAX_SETTING_MINUTES
from core.content import CONTENT_LANGUAGE_CHOICES, CONTENT_LANGUAGE_MAX_LENGTH, content_language_constraint
from crm.models import Customer, Order
from predictions.models import ModelFit

# The bounds of the numbers managers set, (lowest, highest) per field: each model takes its validators (so
# the admin and the API refuse a value) and its CHECK constraints (so the database does) from one place.
# Every one keeps what is computed from it (a lapse, a coupon's expiry, a call's next time) far inside the
# range of a datetime, and is beyond anything a real business would set.
# k times an order history's span (in microseconds, up to 230 years for the database's outer bound) must
# fit in a bigint in the SQL engine (lifecycle_sql.py): k <= 10 keeps it below 7.3e18 of 9.2e18.
MAX_K = Decimal("10")
POLICY_BOUNDS = {
    "k": (Decimal("0.01"), MAX_K),
    "at_risk_k": (Decimal("0.01"), MAX_K),
    "default_days": (1, MAX_SETTING_DAYS),
    "min_days": (1, MAX_SETTING_DAYS),
    "max_days": (1, MAX_SETTING_DAYS),
    "holdout_share": (Decimal("0"), Decimal("0.5")),
    "attribution_window_days": (1, MAX_SETTING_DAYS),
    # A lapse when the chance of still buying falls below this: 1% .. 99% (0 and 1 would never, or at once).
    "p_alive_min": (Decimal("0.01"), Decimal("0.99")),
}
CALL_BOUNDS = {
    "max_attempts": (1, 100),
    "gap_no_answer_minutes": (0, MAX_SETTING_MINUTES),
    "gap_busy_minutes": (0, MAX_SETTING_MINUTES),
    "gap_voicemail_minutes": (0, MAX_SETTING_MINUTES),
    "gap_escalated_minutes": (0, MAX_SETTING_MINUTES),
    "lease_minutes": (1, 24 * 60),  # an agent holds a case for minutes; a day is the most that makes sense
    "callback_grace_minutes": (0, MAX_SETTING_MINUTES),
    # A case an agent put back waits at the end of the queue this long: at least a minute (else "next" would
    # hand it straight back), at most a day (a skip is not a way to park a customer).
    "skip_minutes": (1, 24 * 60),
}
OFFER_BOUNDS = {"valid_days": (1, MAX_SETTING_DAYS)}


def bounded(bounds: dict, field: str) -> list:
    lowest, highest = bounds[field]
    return [MinValueValidator(lowest), MaxValueValidator(highest)]


def range_constraints(model: str, bounds: dict) -> list[models.CheckConstraint]:
    return [models.CheckConstraint(condition=Q(**{f"{field}__gte": lowest, f"{field}__lte": highest}),
                                   name=f"{model}_{field}_in_range")
            for field, (lowest, highest) in bounds.items()]


class DormancyPolicy(models.Model):
    """One version of the dormancy policy (docs/metrics.md section 1). Rows are never edited: a change is a new
    version, recorded with who made it and when; the engine uses the latest.

    The lapse rule is one of three: the customer's own rhythm (k missed cycles), one window for everyone
    (default_days), or the BG/NBD model (P(alive) below p_alive_min). A model policy names the fit whose
    parameters it uses, so the lifecycle stays a pure function of the history and the policy: a nightly refit
    changes no lapse until a manager adopts a policy with the new fit."""

    class Rule(models.TextChoices):
        RHYTHM = "rhythm", _("Rhythm: k missed purchase cycles (default_days before min_orders)")
        WINDOW = "window", _("Window: no order for default_days, for everyone")
        MODEL = "model", _("Model: BG/NBD P(alive) below p_alive_min (default_days before a repeat purchase)")

    rule = models.CharField(verbose_name=_("rule"), max_length=8, choices=Rule.choices, default=Rule.RHYTHM)
    p_alive_min = models.DecimalField(
        verbose_name=_("p alive min"),
        max_digits=3, decimal_places=2, default=Decimal("0.30"), validators=bounded(POLICY_BOUNDS, "p_alive_min"),
        help_text=_("Model rule: a customer with a repeat purchase lapses when P(alive) falls below this."),
    )
    model_fit = models.ForeignKey(
        ModelFit, null=True, blank=True, on_delete=models.PROTECT, related_name="+", verbose_name=_("model fit"),
        limit_choices_to={"model": ModelFit.Model.BGNBD, "usable": True},
        help_text=_("Model rule: the BG/NBD fit whose parameters date the lapses."),
    )

    k = models.DecimalField(
        verbose_name=_("k"),
        max_digits=5, decimal_places=2, default=Decimal("3.00"), validators=bounded(POLICY_BOUNDS, "k"),
        help_text=_("A lapse is k missed purchase cycles."),
    )
    at_risk_k = models.DecimalField(
        verbose_name=_("at risk k"),
        max_digits=5, decimal_places=2, default=Decimal("1.50"), validators=bounded(POLICY_BOUNDS, "at_risk_k"),
        help_text=_("At risk after this many missed cycles (an early warning, not churn)."),
    )
    min_orders = models.PositiveSmallIntegerField(
        verbose_name=_("min orders"),
        default=3, validators=[MinValueValidator(2)], help_text=_("Orders needed before the customer's own rhythm is used.")
    )
    default_days = models.PositiveIntegerField(verbose_name=_("default days"), default=90, validators=bounded(POLICY_BOUNDS, "default_days"))
    min_days = models.PositiveIntegerField(verbose_name=_("min days"), default=14, validators=bounded(POLICY_BOUNDS, "min_days"))
    max_days = models.PositiveIntegerField(verbose_name=_("max days"), default=365, validators=bounded(POLICY_BOUNDS, "max_days"))
    holdout_share = models.DecimalField(
        verbose_name=_("holdout share"),
        max_digits=4, decimal_places=3, default=Decimal("0.100"),
        validators=bounded(POLICY_BOUNDS, "holdout_share"),
        help_text=_("Share of new win-back cases never contacted, to measure the program's true effect."),
    )
    attribution_window_days = models.PositiveIntegerField(
        verbose_name=_("attribution window days"),
        default=30, validators=bounded(POLICY_BOUNDS, "attribution_window_days"),
        help_text=_("A case is won by an order within this many days after a contact or coupon of the case."),
    )
    created_at = models.DateTimeField(verbose_name=_("created at"), auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("created by"), null=True, blank=True, on_delete=models.SET_NULL)
    note = models.CharField(verbose_name=_("note"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("dormancy policy")
        verbose_name_plural = _("dormancy policies")
        ordering = ["-id"]
        constraints = [
            *range_constraints("dormancypolicy", POLICY_BOUNDS),
            models.CheckConstraint(condition=Q(min_days__lte=models.F("max_days")), name="dormancypolicy_min_days_lte_max_days"),
            models.CheckConstraint(condition=Q(rule__in=["rhythm", "window", "model"]), name="dormancypolicy_rule_known"),
            models.CheckConstraint(condition=~Q(rule="model") | Q(model_fit__isnull=False),
                                   name="dormancypolicy_model_rule_has_fit"),
        ]

    def __str__(self) -> str:
        if self.rule == self.Rule.WINDOW:
            return gettext("Policy v%(version)s: window %(days)s days") % {"version": self.pk, "days": self.default_days}
        if self.rule == self.Rule.MODEL:
            return gettext("Policy v%(version)s: P(alive) < %(p)s (fit %(fit)s)") % {
                "version": self.pk, "p": self.p_alive_min, "fit": self.model_fit_id}
        return gettext("Policy v%(version)s: k=%(k)s, at risk %(at_risk_k)s") % {
            "version": self.pk, "k": self.k, "at_risk_k": self.at_risk_k}

    def clean(self) -> None:
        errors = {}
        if self.min_days > self.max_days:
            errors["min_days"] = _("The fewest days cannot exceed the most days.")
        if self.at_risk_k is not None and self.k is not None and self.at_risk_k >= self.k:
            errors["at_risk_k"] = _("The at-risk k must be smaller than k: at risk comes before the lapse.")
        if self.rule == self.Rule.MODEL:
            fit = self.model_fit
            if fit is None:
                errors["model_fit"] = _("The model rule needs a fit: run fit_models, then choose its BG/NBD fit.")
            elif fit.model != ModelFit.Model.BGNBD or not fit.usable:
                errors["model_fit"] = _("The model rule needs a usable BG/NBD fit (converged on enough data).")
        if errors:
            raise ValidationError(errors)


class RuleTuning(models.Model):
    """One backtest of candidate lapse rules on the business's own orders (winback/services/rule_tuning.py):
    calibrate on the history before ``calibration_end``, score on the months after, and what each candidate
    would flag today. The latest run is shown beside the dormancy policy, where a manager adopts a candidate."""

    ran_at = models.DateTimeField(verbose_name=_("ran at"))
    calibration_end = models.DateField(verbose_name=_("calibration end"), null=True, blank=True)
    holdout_days = models.PositiveIntegerField(verbose_name=_("holdout days"))
    customers = models.PositiveIntegerField(verbose_name=_("customers"), default=0)
    policy = models.ForeignKey(DormancyPolicy, verbose_name=_("policy"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                               help_text=_("The policy in use when it ran (its candidate is the first row)."))
    # [{"key", "label", "values": {policy fields}, "all": {...}, "repeat": {...}, "flagged_today"}], best first.
    candidates = models.JSONField(verbose_name=_("candidates"), default=list, blank=True)
    best_key = models.CharField(verbose_name=_("best key"), max_length=40, blank=True)
    better = models.BooleanField(verbose_name=_("better"), default=False, help_text=_("Another rule beats the current one by the margin."))
    reason = models.CharField(verbose_name=_("reason"), max_length=300, blank=True, help_text=_("Why it could not run, when it could not."))

    class Meta:
        verbose_name = _("rule tuning")
        verbose_name_plural = _("rule tunings")
        ordering = ["-id"]

    def __str__(self) -> str:
        return gettext("Lapse rule tuning %(at)s") % {"at": f"{self.ran_at:%Y-%m-%d %H:%M}"}


class LifecycleEvent(models.Model):
    class Kind(models.TextChoices):
        ACQUIRED = "acquired", _("Acquired")
        AT_RISK = "at_risk", _("At risk")
        LAPSED = "lapsed", _("Lapsed")
        REACTIVATED = "reactivated", _("Reactivated")
        CANCELLED = "cancelled", _("Cancelled")

    # No database constraint: events are derived data, rebuilt from the orders at will, written only for ids
    # read from crm_customer in the same transaction, and customers are never deleted. Checking millions of
    # rows at commit would cost a full scan as much again.
    customer = models.ForeignKey(Customer, verbose_name=_("customer"), on_delete=models.PROTECT, related_name="lifecycle_events",
                                 db_index=False, db_constraint=False)
    kind = models.CharField(verbose_name=_("kind"), max_length=12, choices=Kind.choices)
    occurred_at = models.DateTimeField(verbose_name=_("occurred at"), help_text=_("When it happened (the crossing instant), never the run time."))
    created_at = models.DateTimeField(verbose_name=_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("lifecycle event")
        verbose_name_plural = _("lifecycle events")
        ordering = ["customer", "occurred_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["customer", "kind", "occurred_at"], name="lifecycle_event_unique"),
        ]
        indexes = [models.Index(fields=["kind", "occurred_at"], name="lifecycle_event_kind_time")]

    def __str__(self) -> str:
        # Translators: a lifecycle event in lists: its kind (e.g. "Lapsed"), then when.
        return gettext("%(kind)s %(at)s") % {"kind": self.get_kind_display(), "at": f"{self.occurred_at:%Y-%m-%d %H:%M}"}


class WinbackCase(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        WON = "won", _("Won (ordered after a contact or coupon)")
        RETURNED = "returned", _("Returned on their own")
        LOST = "lost", _("Lost")
        VOID = "void", _("Void (no longer lapsed after a policy change or backfill)")
        DONE = "done", _("Done (a care call was made)")

    class Kind(models.TextChoices):
        WINBACK = "winback", _("Win-back (a lapse or cancellation)")
        # A call a cadence asked for (an NPS detractor, a complaint routed to a call) for a customer who
        # has no open win-back case. Never counted in the win-back KPIs.
        CARE = "care", _("Care call")

    customer = models.ForeignKey(Customer, verbose_name=_("customer"), on_delete=models.PROTECT, related_name="winback_cases", db_index=False)
    kind = models.CharField(verbose_name=_("kind"), max_length=8, choices=Kind.choices, default=Kind.WINBACK)
    lapse_event = models.OneToOneField(
        LifecycleEvent, null=True, blank=True, on_delete=models.SET_NULL, related_name="winback_case",
        verbose_name=_("lapse event"),
        help_text=_("The lapse or cancellation that opened the case."),
    )
    lapsed_at = models.DateTimeField(verbose_name=_("lapsed at"), help_text=_("When the customer lapsed; for a care call, when the call was asked for."))
    opened_at = models.DateTimeField(verbose_name=_("opened at"))
    status = models.CharField(verbose_name=_("status"), max_length=10, choices=Status.choices, default=Status.OPEN)
    holdout = models.BooleanField(verbose_name=_("holdout"), default=False, help_text=_("Never contacted: the control group. Never changes."))
    is_recovery = models.BooleanField(verbose_name=_("is recovery"), default=False, help_text=_("The customer has an unresolved complaint."))
    revenue_12m = models.DecimalField(verbose_name=_("revenue 12m"), max_digits=14, decimal_places=2, default=Decimal("0"),
                                      help_text=_("Revenue in the 365 days before the lapse."))
    predicted_value = models.DecimalField(
        verbose_name=_("predicted value"),
        max_digits=16, decimal_places=2, null=True, blank=True,
        help_text=_("Predicted recoverable value: P(alive) x the 12-month CLV of a customer still buying (the model's "
                    "predicted_clv_12m), from the latest fit; empty without a prediction."))
    priority = models.DecimalField(verbose_name=_("priority"), max_digits=16, decimal_places=2, default=Decimal("0"), db_index=True)
    closed_at = models.DateTimeField(verbose_name=_("closed at"), null=True, blank=True)
    close_reason = models.CharField(verbose_name=_("close reason"), max_length=200, blank=True)
    # Indexes on the case table are few and partial where they can be: claim and release rewrite the row,
    # and every index gets a new entry on each rewrite.
    reactivation_order = models.ForeignKey(Order, verbose_name=_("reactivation order"), null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                           db_index=False)
    # The queue. "ready": may be claimed now (calling hours and the customer's own flags are checked at
    # claim time); a case waiting for a gap, a callback or a lease has ready=False and next_call_at set.
    ready = models.BooleanField(verbose_name=_("ready"), default=False)
    next_call_at = models.DateTimeField(verbose_name=_("next call at"), null=True, blank=True)
    claimed_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("claimed by"), null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                   db_index=False)  # one_claim_per_agent serves its lookups
    lease_until = models.DateTimeField(verbose_name=_("lease until"), null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(verbose_name=_("attempts"), default=0)
    last_attempt_at = models.DateTimeField(verbose_name=_("last attempt at"), null=True, blank=True)
    callback_at = models.DateTimeField(verbose_name=_("callback at"), null=True, blank=True)
    callback_agent = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("callback agent"), null=True, blank=True, on_delete=models.PROTECT,
                                       related_name="+", db_index=False)
    awaiting_return = models.BooleanField(verbose_name=_("awaiting return"), default=False, help_text=_("Reached and said they will return."))
    # Put back in the queue by an agent: until then it comes after every other callable case, so "next"
    # never hands the same customer straight back. Cleared by the next claim.
    skipped_until = models.DateTimeField(verbose_name=_("skipped until"), null=True, blank=True)
    created_at = models.DateTimeField(verbose_name=_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(verbose_name=_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("winback case")
        verbose_name_plural = _("winback cases")
        ordering = ["-priority", "id"]
        constraints = [
            models.UniqueConstraint(fields=["customer"], condition=Q(status="open", kind="winback"), name="one_open_case_per_customer"),
            models.UniqueConstraint(fields=["customer"], condition=Q(status="open", kind="care"), name="one_open_care_case_per_customer"),
            # An agent holds at most one case at a time.
            models.UniqueConstraint(fields=["claimed_by"], condition=Q(claimed_by__isnull=False), name="one_claim_per_agent"),
        ]
        indexes = [
            models.Index(fields=["customer", "opened_at"], name="case_customer_time"),
            models.Index(fields=["status", "closed_at"], name="case_status_closed", condition=Q(closed_at__isnull=False)),
            models.Index(fields=["callback_agent"], name="case_callback_agent", condition=Q(callback_agent__isnull=False)),
            models.Index(fields=["reactivation_order"], name="case_reactivation_order",
                         condition=Q(reactivation_order__isnull=False)),
            # The claim walks this in queue order; only ready, contactable cases are in it.
            models.Index(fields=["-is_recovery", "-priority", "id"], name="case_queue",
                         condition=Q(status="open", ready=True, holdout=False)),
            # Cases waiting for their time (a gap after an attempt, a callback, an expired lease).
            models.Index(fields=["next_call_at"], name="case_wakeup",
                         condition=Q(status="open", ready=False, next_call_at__isnull=False)),
            models.Index(fields=["callback_at"], name="case_callbacks",
                         condition=Q(status="open", callback_at__isnull=False)),
            # The few cases an agent put back, for the claim's last branch.
            models.Index(fields=["skipped_until", "id"], name="case_skipped",
                         condition=Q(status="open", ready=True, holdout=False, skipped_until__isnull=False)),
        ]

    def __str__(self) -> str:
        return gettext("Case %(id)s (%(status)s)") % {"id": self.pk, "status": self.get_status_display()}


class CallSettings(models.Model):
    """The calling rules managers set (one row)."""

    calling_start = models.TimeField(verbose_name=_("calling start"), default=dt.time(8, 0), help_text=_("Earliest call, customer's local time."))
    calling_end = models.TimeField(verbose_name=_("calling end"), default=dt.time(21, 0), help_text=_("No call at or after this local time."))
    max_attempts = models.PositiveSmallIntegerField(verbose_name=_("max attempts"), default=6, validators=bounded(CALL_BOUNDS, "max_attempts"))
    gap_no_answer_minutes = models.PositiveIntegerField(verbose_name=_("gap no answer minutes"), default=240, validators=bounded(CALL_BOUNDS, "gap_no_answer_minutes"))
    gap_busy_minutes = models.PositiveIntegerField(verbose_name=_("gap busy minutes"), default=240, validators=bounded(CALL_BOUNDS, "gap_busy_minutes"))
    gap_voicemail_minutes = models.PositiveIntegerField(verbose_name=_("gap voicemail minutes"), default=240, validators=bounded(CALL_BOUNDS, "gap_voicemail_minutes"))
    gap_escalated_minutes = models.PositiveIntegerField(verbose_name=_("gap escalated minutes"), default=24 * 60, validators=bounded(CALL_BOUNDS, "gap_escalated_minutes"),
                                                        help_text=_("After a complaint is escalated."))
    lease_minutes = models.PositiveIntegerField(verbose_name=_("lease minutes"), default=15, validators=bounded(CALL_BOUNDS, "lease_minutes"))
    callback_grace_minutes = models.PositiveIntegerField(verbose_name=_("callback grace minutes"), default=15, validators=bounded(CALL_BOUNDS, "callback_grace_minutes"),
                                                         help_text=_("Then a due callback goes to anyone."))
    skip_minutes = models.PositiveIntegerField(
        verbose_name=_("skip minutes"),
        default=30, validators=bounded(CALL_BOUNDS, "skip_minutes"),
        help_text=_("A case an agent puts back in the queue comes after all others for this many minutes."))
    updated_at = models.DateTimeField(verbose_name=_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("call settings")
        verbose_name_plural = _("call settings")
        constraints = range_constraints("callsettings", CALL_BOUNDS)

    def __str__(self) -> str:
        return gettext("Calls %(start)s–%(end)s, %(attempts)s attempts") % {
            "start": f"{self.calling_start:%H:%M}", "end": f"{self.calling_end:%H:%M}", "attempts": self.max_attempts}

    def clean(self) -> None:
        if self.calling_start >= self.calling_end:
            raise ValidationError({"calling_end": _("Calling hours must end after they start.")})


class LeaveReason(models.Model):
    name = models.CharField(verbose_name=_("name"), max_length=80)
    position = models.PositiveSmallIntegerField(verbose_name=_("position"), default=0)
    active = models.BooleanField(verbose_name=_("active"), default=True)

    class Meta:
        verbose_name = _("leave reason")
        verbose_name_plural = _("leave reasons")
        ordering = ["position", "name"]
        constraints = [models.UniqueConstraint(fields=["name"], name="leave_reason_name_unique")]

    def __str__(self) -> str:
        return self.name


class Offer(models.Model):
    name = models.CharField(verbose_name=_("name"), max_length=100)
    script = models.CharField(
        verbose_name=_("script"), max_length=300,
        # xgettext:no-python-format
        help_text=_("What the agent says, e.g. '20% off your next order'."))
    code_prefix = models.CharField(verbose_name=_("code prefix"), max_length=12, default="BACK")
    valid_days = models.PositiveIntegerField(verbose_name=_("valid days"), default=30, validators=bounded(OFFER_BOUNDS, "valid_days"))
    active = models.BooleanField(verbose_name=_("active"), default=True)
    created_at = models.DateTimeField(verbose_name=_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("offer")
        verbose_name_plural = _("offers")
        ordering = ["name"]
        constraints = range_constraints("offer", OFFER_BOUNDS)

    def __str__(self) -> str:
        return self.name


class Coupon(models.Model):
    code = models.CharField(verbose_name=_("code"), max_length=64)
    offer = models.ForeignKey(Offer, verbose_name=_("offer"), null=True, blank=True, on_delete=models.PROTECT, related_name="coupons")
    customer = models.ForeignKey(Customer, verbose_name=_("customer"), on_delete=models.PROTECT, related_name="coupons", db_index=False)
    case = models.ForeignKey(WinbackCase, verbose_name=_("case"), null=True, blank=True, on_delete=models.PROTECT, related_name="coupons")
    issued_at = models.DateTimeField(verbose_name=_("issued at"))
    expires_at = models.DateTimeField(verbose_name=_("expires at"), null=True, blank=True)
    redeemed_at = models.DateTimeField(verbose_name=_("redeemed at"), null=True, blank=True)
    redeemed_order = models.OneToOneField(Order, verbose_name=_("redeemed order"), null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        verbose_name = _("coupon")
        verbose_name_plural = _("coupons")
        ordering = ["-issued_at"]
        constraints = [models.UniqueConstraint(fields=["code"], name="coupon_code_unique")]
        indexes = [models.Index(fields=["customer", "issued_at"], name="coupon_customer_time")]

    def __str__(self) -> str:
        return self.code


class CouponReservation(models.Model):
    """The code shown to the agent as soon as they choose an offer, before the call is saved.

    Not a coupon yet: the KPIs count coupons (offers made, redemptions, a case won by a coupon), and an
    offer chosen then changed, or a call never saved, must not count or redeem. Saving the call issues the
    coupon with this very code (winback/services/queue.py); one reservation per case, replaced when the
    agent picks another offer, dropped when the case is saved or put back."""

    case = models.OneToOneField(WinbackCase, verbose_name=_("case"), on_delete=models.CASCADE, related_name="coupon_reservation")
    agent = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("agent"), on_delete=models.CASCADE, related_name="+", db_index=False)
    offer = models.ForeignKey(Offer, verbose_name=_("offer"), on_delete=models.CASCADE, related_name="+", db_index=False)
    code = models.CharField(verbose_name=_("code"), max_length=64)
    reserved_at = models.DateTimeField(verbose_name=_("reserved at"))

    class Meta:
        verbose_name = _("coupon reservation")
        verbose_name_plural = _("coupon reservations")
        constraints = [models.UniqueConstraint(fields=["code"], name="coupon_reservation_code_unique")]

    def __str__(self) -> str:
        return gettext("%(code)s (reserved for case %(case)s)") % {"code": self.code, "case": self.case_id}


class LifecycleScanState(models.Model):
    """One row: which policy version the events were last fully built with, and when scans ran.

    An incremental scan that finds a newer policy turns itself into a full rebuild, so a policy change is
    applied even if the rebuild task it enqueued was lost."""

    built_with_policy = models.PositiveIntegerField(verbose_name=_("built with policy"), default=0)
    last_full_at = models.DateTimeField(verbose_name=_("last full at"), null=True, blank=True)
    last_scan_at = models.DateTimeField(verbose_name=_("last scan at"), null=True, blank=True)

    class Meta:
        verbose_name = _("lifecycle scan state")
        verbose_name_plural = _("lifecycle scan states")

    def __str__(self) -> str:
        return f"built with policy v{self.built_with_policy}"


class Disposition(models.Model):
    """One worked call of a case: what happened, why they left, what was offered."""

    case = models.ForeignKey(WinbackCase, verbose_name=_("case"), on_delete=models.PROTECT, related_name="dispositions")
    agent = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("agent"), on_delete=models.PROTECT, related_name="+")
    contact = models.OneToOneField("crm.Contact", verbose_name=_("contact"), on_delete=models.PROTECT, related_name="+")
    outcome = models.CharField(verbose_name=_("outcome"), max_length=24)
    reason = models.ForeignKey(LeaveReason, verbose_name=_("reason"), null=True, blank=True, on_delete=models.PROTECT)
    note = models.TextField(verbose_name=_("note"), blank=True)
    callback_at = models.DateTimeField(verbose_name=_("callback at"), null=True, blank=True)
    coupon = models.OneToOneField(Coupon, verbose_name=_("coupon"), null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(verbose_name=_("created at"))

    class Meta:
        verbose_name = _("disposition")
        verbose_name_plural = _("dispositions")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["agent", "created_at"], name="disposition_agent_time")]

    def __str__(self) -> str:
        return gettext("%(outcome)s on case %(case)s") % {"outcome": self.outcome, "case": self.case_id}


class CaseEvent(models.Model):
    """One change of a case: what happened, when, by whom (an agent) or what (the lifecycle scan, the
    queue's wake-up, a cadence), and the status before and after. Written by winback/services/cases.py
    with every change, in the same statement or transaction; replaying a case's events gives its state."""

    class Kind(models.TextChoices):
        OPENED = "opened", _("Opened")
        CLAIMED = "claimed", _("Claimed by an agent")
        RELEASED = "released", _("Released (handed back, or its lease ran out)")
        WORKED = "worked", _("Call recorded")
        RECOVERY = "recovery", _("Recovery call flag changed")
        CLOSED = "closed", _("Closed")

    case = models.ForeignKey(WinbackCase, verbose_name=_("case"), on_delete=models.PROTECT, related_name="events", db_index=False)
    kind = models.CharField(verbose_name=_("kind"), max_length=10, choices=Kind.choices)
    at = models.DateTimeField(verbose_name=_("at"))
    from_status = models.CharField(verbose_name=_("from status"), max_length=10, choices=WinbackCase.Status.choices, blank=True)
    to_status = models.CharField(verbose_name=_("to status"), max_length=10, choices=WinbackCase.Status.choices)
    # The agent for claims, calls and releases by hand; None for what the system did (actor says what).
    agent = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("agent"), null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+", db_index=False)
    actor = models.CharField(verbose_name=_("actor"), max_length=40, help_text=_("Who or what: 'agent', 'lifecycle scan', 'queue', 'cadence'."))
    # The recovery flag after the change (replay needs it; it moves without a status change).
    is_recovery = models.BooleanField(verbose_name=_("is recovery"))
    reason = models.CharField(verbose_name=_("reason"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("case event")
        verbose_name_plural = _("case events")
        ordering = ["case", "at", "id"]
        indexes = [models.Index(fields=["case", "at"], name="case_event_case_time")]

    def __str__(self) -> str:
        return gettext("%(kind)s, case %(case)s, %(at)s") % {
            "kind": self.get_kind_display(), "case": self.case_id, "at": f"{self.at:%Y-%m-%d %H:%M}"}


class OfferTranslation(models.Model):
    """An offer's name and script in one language (core/content.py reads them, with the fallback chain)."""

    offer = models.ForeignKey(Offer, on_delete=models.CASCADE, related_name="translations")
    language = models.CharField(_("language"), max_length=CONTENT_LANGUAGE_MAX_LENGTH, choices=CONTENT_LANGUAGE_CHOICES)
    name = models.CharField(_("name"), max_length=100)
    script = models.CharField(_("script"), max_length=300, blank=True,
                              help_text=_("What the agent says and the message shows; empty: the fallback language's script."))

    class Meta:
        ordering = ["offer", "language"]
        verbose_name = _("offer translation")
        verbose_name_plural = _("offer translations")
        constraints = [
            models.UniqueConstraint(fields=["offer", "language"], name="offer_translation_unique"),
            content_language_constraint("offertranslation"),
            # The lengths as a CHECK too: SQLite does not hold a varchar to its length (PostgreSQL does).
            models.CheckConstraint(condition=LessThanOrEqual(Length("name"), 100), name="offertranslation_name_length"),
            models.CheckConstraint(condition=LessThanOrEqual(Length("script"), 300),
                                   name="offertranslation_script_length"),
        ]

    def __str__(self) -> str:
        return self.get_language_display()


class LeaveReasonTranslation(models.Model):
    """A reason for leaving in one language, as agents and reports show it."""

    reason = models.ForeignKey(LeaveReason, on_delete=models.CASCADE, related_name="translations")
    language = models.CharField(_("language"), max_length=CONTENT_LANGUAGE_MAX_LENGTH, choices=CONTENT_LANGUAGE_CHOICES)
    name = models.CharField(_("name"), max_length=80)

    class Meta:
        ordering = ["reason", "language"]
        verbose_name = _("reason translation")
        verbose_name_plural = _("reason translations")
        constraints = [
            models.UniqueConstraint(fields=["reason", "language"], name="leave_reason_translation_unique"),
            content_language_constraint("leavereasontranslation"),
            models.CheckConstraint(condition=LessThanOrEqual(Length("name"), 80),
                                   name="leavereasontranslation_name_length"),
        ]

    def __str__(self) -> str:
        return self.get_language_display()
