import datetime as dt
import re
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q, Value
from django.db.models.functions import Replace
from django.db.models.lookups import Regex
from django.utils.translation import gettext as _

from core.bounds import MAX_SETTING_DAYS, MAX_SETTING_HOURS
from crm.models import Contact, Customer
from winback.models import Coupon, Offer, WinbackCase, bounded, range_constraints

# The bounds of the numbers managers set (see winback.models): validators and CHECK constraints alike.
CADENCE_BOUNDS = {
    "min_orders": (0, 100_000),
    "interval_days": (1, MAX_SETTING_DAYS),
}
STEP_BOUNDS = {
    "offset_days": (0, MAX_SETTING_DAYS),
    "offset_hours": (0, MAX_SETTING_HOURS),
}
# The first retry's delay is at most this (a setting); later ones are capped by TOUCHPOINT_RETRY_MAX_DELAY_SECONDS.
MAX_RETRY_DELAY_SECONDS = 6 * 3600
# The environment's retry settings (config/settings/base.py, README), checked by touchpoints.checks.
RETRY_WINDOW_HOURS_BOUNDS = (1, 14 * 24)
RETRY_MAX_DELAY_SECONDS_BOUNDS = (60, MAX_RETRY_DELAY_SECONDS)
SETTINGS_BOUNDS = {
    "cap_count": (1, 100),
    "cap_days": (1, 366),
    "retry_base_seconds": (1, MAX_RETRY_DELAY_SECONDS),
    "stale_after_hours": (1, MAX_SETTING_HOURS),
}
# Milestones are order numbers (a customer's Nth order), 1 to MAX_MILESTONE, comma-separated; spaces are
# ignored. The same pattern is the database's CHECK (on the text without its spaces), so it stays a plain
# regular expression that PostgreSQL and Python read alike.
MAX_MILESTONE = 100_000
_MILESTONE = "0*([1-9][0-9]{0,4}|100000)"
MILESTONES_PATTERN = rf"^,*({_MILESTONE}(,+{_MILESTONE})*)?,*$"


def milestone_tokens(text: str) -> list[str]:
    return [x for x in text.replace(" ", "").split(",") if x]


def is_milestone(token: str) -> bool:
    # [0-9], not str.isdigit: that also takes "²" and Arabic-Indic digits, which the CHECK refuses.
    return re.fullmatch("[0-9]+", token) is not None and 0 < int(token) <= MAX_MILESTONE


def validate_milestones(value: str) -> None:
    bad = [x for x in milestone_tokens(value) if not is_milestone(x)]
    if bad:
        raise ValidationError(
            _("Not an order number from 1 to %(most)s: %(bad)s.") % {"most": MAX_MILESTONE, "bad": ", ".join(bad)},
            code="milestone_out_of_range")

# The templates shipped in templates/emails/<locale>/ (en and ar for each).
TEMPLATE_CHOICES = [
    ("thank_you", "Thank you for your order"),
    ("order_follow_up", "Order follow-up (CSAT question)"),
    ("milestone", "Loyalty milestone (Nth order)"),
    ("anniversary", "Anniversary of becoming a customer"),
    ("checkin", "Check-in for a valued customer"),
    ("appreciation", "Appreciation before a lapse (at risk)"),
    ("winback_miss_you", "Win-back: we miss you (NPS question)"),
    ("winback_offer", "Win-back: an offer with a unique coupon"),
    ("winback_last_chance", "Win-back: last reminder"),
    ("complaint_follow_up", "After a resolved complaint (CSAT question)"),
]


class Cadence(models.Model):
    class Trigger(models.TextChoices):
        ORDER = "order", "After an order"
        MILESTONE = "milestone", "Loyalty milestone (the Nth order)"
        ANNIVERSARY = "anniversary", "Yearly anniversary of acquisition"
        CHECKIN = "checkin", "Recurring check-in"
        AT_RISK = "at_risk", "At risk (before the lapse)"
        LAPSED = "lapsed", "Lapsed or cancelled (win-back)"
        COMPLAINT_RESOLVED = "complaint_resolved", "Complaint resolved"
        NPS_DETRACTOR = "nps_detractor", "NPS detractor (0-6)"

    name = models.CharField(max_length=100)
    trigger = models.CharField(max_length=20, choices=Trigger.choices)
    enabled = models.BooleanField(default=True)
    marketing = models.BooleanField(
        default=True,
        help_text="Marketing messages need consent (or an existing relationship), carry an unsubscribe link and "
                  "count towards the frequency cap. Untick only for transactional messages such as an order thank-you.",
    )
    # The audience filter: who the cadence is for.
    min_orders = models.PositiveIntegerField(default=0, validators=bounded(CADENCE_BOUNDS, "min_orders"),
                                             help_text="Only customers with at least this many orders.")
    min_total_spent = models.DecimalField(
        max_digits=14, decimal_places=2, default=Decimal("0"), validators=[MinValueValidator(Decimal("0"))],
        help_text="Only customers who spent at least this much in all.",
    )
    locales = models.CharField(max_length=100, blank=True, help_text="Comma-separated locales (e.g. 'en,ar'); blank: everyone.")
    # Trigger parameters.
    milestones = models.CharField(max_length=100, blank=True, default="5,10,25,50,100", validators=[validate_milestones],
                                  help_text="Milestone trigger: the order numbers to celebrate, comma-separated.")
    interval_days = models.PositiveIntegerField(default=90, validators=bounded(CADENCE_BOUNDS, "interval_days"),
                                                help_text="Check-in trigger: days between check-ins.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["trigger", "name"]
        constraints = [
            *range_constraints("cadence", CADENCE_BOUNDS),
            models.CheckConstraint(condition=Q(min_total_spent__gte=0), name="cadence_min_total_spent_gte_0"),
            models.CheckConstraint(condition=Regex(Replace("milestones", Value(" "), Value("")), MILESTONES_PATTERN),
                                   name="cadence_milestones_order_numbers"),
        ]

    def __str__(self) -> str:
        return self.name

    def milestone_numbers(self) -> list[int]:
        return sorted({int(x) for x in milestone_tokens(self.milestones) if is_milestone(x)})

    def locale_list(self) -> list[str]:
        return [x.strip().lower() for x in self.locales.split(",") if x.strip()]

    def clean(self) -> None:
        if self.trigger == self.Trigger.MILESTONE and not self.milestone_numbers():
            raise ValidationError({"milestones": "A milestone cadence needs at least one order number."})


class CadenceStep(models.Model):
    class Channel(models.TextChoices):
        EMAIL = "email", "Email"
        SMS = "sms", "SMS"
        CALL = "call", "Call (a task in the agents' queue)"

    cadence = models.ForeignKey(Cadence, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField(default=1)
    offset_days = models.PositiveIntegerField(default=0, validators=bounded(STEP_BOUNDS, "offset_days"),
                                              help_text="Days after the trigger.")
    offset_hours = models.PositiveIntegerField(default=0, validators=bounded(STEP_BOUNDS, "offset_hours"),
                                               help_text="Plus this many hours.")
    channel = models.CharField(max_length=8, choices=Channel.choices, default=Channel.EMAIL)
    template = models.CharField(max_length=40, choices=TEMPLATE_CHOICES, blank=True,
                                help_text="The message (email and SMS); a call step needs none.")
    offer = models.ForeignKey(Offer, null=True, blank=True, on_delete=models.PROTECT,
                              help_text="A unique coupon for this offer goes with the message.")
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["cadence", "position", "id"]
        constraints = range_constraints("cadencestep", STEP_BOUNDS)

    def __str__(self) -> str:
        return f"{self.cadence.name}: step {self.position} ({self.get_channel_display()}, +{self.offset})"

    @property
    def offset(self) -> dt.timedelta:
        return dt.timedelta(days=self.offset_days, hours=self.offset_hours)

    @property
    def is_discount(self) -> bool:
        """A "we miss you" or an offer: never while a complaint is open (a recovery call instead)."""
        return self.offer_id is not None or self.cadence.trigger == Cadence.Trigger.LAPSED

    def clean(self) -> None:
        if self.channel != self.Channel.CALL and not self.template:
            raise ValidationError({"template": "An email or SMS step needs a template."})


class Touchpoint(models.Model):
    """The outbox: one row per message (or call task) a cadence produced, sent at most once."""

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        SUPPRESSED = "suppressed", "Suppressed (a rule said no; see the reason)"
        CANCELLED = "cancelled", "Cancelled (no longer applies)"
        FAILED = "failed", "Failed"

    class Reason(models.TextChoices):
        NO_EMAIL = "no_email", "No email address"
        NO_PHONE = "no_phone", "No phone number"
        NO_CONSENT = "no_consent", "No marketing consent"
        OPTED_OUT = "opted_out", "Opted out"
        DO_NOT_CALL = "do_not_call", "Do not call"
        HOLDOUT = "holdout", "In the holdout (never contacted)"
        CASE_IN_PROGRESS = "case_in_progress", "An agent is working their case"
        OPEN_COMPLAINT = "open_complaint", "Open complaint (routed to a recovery call)"
        FREQUENCY_CAP = "frequency_cap", "Frequency cap reached"
        QUIET_HOURS = "quiet_hours", "Quiet hours (deferred)"
        NO_LONGER_APPLIES = "no_longer_applies", "No longer applies"
        DISABLED = "disabled", "Cadence or step disabled"
        EXPIRED = "expired", "Too late to send"
        MAIL_SERVER = "mail_server", "Waiting for the mail server"
        TEMPORARY_ERROR = "temporary_error", "Temporary error (retrying)"

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="touchpoints", db_index=False)
    step = models.ForeignKey(CadenceStep, on_delete=models.PROTECT, related_name="touchpoints")
    channel = models.CharField(max_length=8, choices=CadenceStep.Channel.choices)
    # What triggered it: when (the order, the event, the anniversary...) and a label for people.
    anchor_at = models.DateTimeField()
    anchor = models.CharField(max_length=64, blank=True)
    due_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SCHEDULED)
    # Unique: the same trigger can never produce the same step twice, whoever materialises it and how often.
    idempotency_key = models.CharField(max_length=120)
    # A dispatcher queued it for a worker until then (a lost task is picked up again after it).
    queued_until = models.DateTimeField(null=True, blank=True)
    # A worker holds it for sending until then (a killed worker's touchpoint is sent after it).
    lease_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # After a temporary error: when it is tried next (it waits until then though due), and when the errors
    # began (the retry window, TOUCHPOINT_RETRY_WINDOW_HOURS, counts from there). Both empty otherwise.
    retry_at = models.DateTimeField(null=True, blank=True)
    retry_since = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    reason = models.CharField(max_length=20, choices=Reason.choices, blank=True,
                              help_text="Why it was suppressed, cancelled or last deferred.")
    sent_at = models.DateTimeField(null=True, blank=True)
    provider_message_id = models.CharField(max_length=200, blank=True)
    subject = models.CharField(max_length=300, blank=True)
    contact = models.OneToOneField(Contact, null=True, blank=True, on_delete=models.PROTECT, related_name="touchpoint")
    coupon = models.OneToOneField(Coupon, null=True, blank=True, on_delete=models.PROTECT, related_name="touchpoint")
    case = models.ForeignKey(WinbackCase, null=True, blank=True, on_delete=models.PROTECT, related_name="touchpoints")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-due_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["idempotency_key"], name="touchpoint_idempotency_key_unique")]
        indexes = [
            models.Index(fields=["customer", "due_at"], name="touchpoint_customer_due"),
            # The dispatcher's walk: only rows still to send are in it.
            models.Index(fields=["due_at"], name="touchpoint_due", condition=Q(status="scheduled")),
            models.Index(fields=["lease_until"], name="touchpoint_sending", condition=Q(status="sending")),
            models.Index(fields=["customer", "sent_at"], name="touchpoint_customer_sent", condition=Q(status="sent")),
            models.Index(fields=["status", "updated_at"], name="touchpoint_status_time"),
            # Those waiting for the mail server: the tick's recovery check and /health/ read only these.
            models.Index(fields=["retry_at"], name="touchpoint_waiting_server",
                         condition=Q(status="scheduled", reason="mail_server")),
            # "Is an older message to this customer waiting?" (dispatch.py, sending.py)
            models.Index(fields=["customer", "channel", "due_at"], name="touchpoint_customer_retrying",
                         condition=Q(retry_since__isnull=False, status__in=["scheduled", "sending"])),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} to customer {self.customer_id} due {self.due_at:%Y-%m-%d %H:%M} ({self.status})"


class TouchpointSettings(models.Model):
    """The sending rules managers set (one row)."""

    cap_count = models.PositiveSmallIntegerField(default=2, validators=bounded(SETTINGS_BOUNDS, "cap_count"),
                                                 help_text="At most this many touches per customer...")
    cap_days = models.PositiveSmallIntegerField(default=7, validators=bounded(SETTINGS_BOUNDS, "cap_days"),
                                                help_text="...in this many days, all channels.")
    transactional_exempt = models.BooleanField(
        default=True, help_text="Transactional messages (the order thank-you) neither wait for nor count towards the cap.")
    quiet_start = models.TimeField(default=dt.time(21, 0), help_text="No sends from this local time...")
    quiet_end = models.TimeField(default=dt.time(8, 0), help_text="...until this local time (the customer's zone).")
    retry_base_seconds = models.PositiveIntegerField(default=60, validators=bounded(SETTINGS_BOUNDS, "retry_base_seconds"),
                                                     help_text="After a temporary error the first retry waits this long, each next one twice as long, "
                  "up to TOUCHPOINT_RETRY_MAX_DELAY_SECONDS; retries go on for TOUCHPOINT_RETRY_WINDOW_HOURS.")
    stale_after_hours = models.PositiveIntegerField(default=48, validators=bounded(SETTINGS_BOUNDS, "stale_after_hours"),
                                                    help_text="A touchpoint this late (e.g. after an outage) is not sent any more.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = verbose_name_plural = "touchpoint settings"
        constraints = range_constraints("touchpointsettings", SETTINGS_BOUNDS)

    def __str__(self) -> str:
        return f"At most {self.cap_count} per {self.cap_days} days; quiet {self.quiet_start:%H:%M}-{self.quiet_end:%H:%M}"

    def clean(self) -> None:
        if self.quiet_start == self.quiet_end:
            raise ValidationError({"quiet_end": "Quiet hours must start and end at different times."})


class TouchpointScanState(models.Model):
    """One row: where the materialiser got to, so each tick looks only at what is new."""

    last_run_at = models.DateTimeField(null=True, blank=True)
    last_daily_on = models.DateField(null=True, blank=True)
    # [(run instant, highest order id then)] of the last runs: where new orders start (materialize.py).
    order_marks = models.JSONField(default=list, blank=True)

    def __str__(self) -> str:
        return f"last run {self.last_run_at}"
