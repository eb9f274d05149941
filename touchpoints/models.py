import datetime as dt
import re
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q, Value
from django.db.models.functions import Length, Replace
from django.db.models.lookups import LessThanOrEqual, Regex
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.utils.translation import gettext_lazy, ngettext

from core.bounds import MAX_SETTING_DAYS, MAX_SETTING_HOURS
from core.content import CONTENT_LANGUAGE_CHOICES, CONTENT_LANGUAGE_MAX_LENGTH, content_language_constraint
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
    ("thank_you", gettext_lazy("Thank you for your order")),
    ("order_follow_up", gettext_lazy("Order follow-up (CSAT question)")),
    ("milestone", gettext_lazy("Loyalty milestone (Nth order)")),
    ("anniversary", gettext_lazy("Anniversary of becoming a customer")),
    ("checkin", gettext_lazy("Check-in for a valued customer")),
    ("appreciation", gettext_lazy("Appreciation before a lapse (at risk)")),
    ("winback_miss_you", gettext_lazy("Win-back: we miss you (NPS question)")),
    ("winback_offer", gettext_lazy("Win-back: an offer with a unique coupon")),
    ("winback_last_chance", gettext_lazy("Win-back: last reminder")),
    ("complaint_follow_up", gettext_lazy("After a resolved complaint (CSAT question)")),
]


class Cadence(models.Model):
    class Trigger(models.TextChoices):
        ORDER = "order", gettext_lazy("After an order")
        MILESTONE = "milestone", gettext_lazy("Loyalty milestone (the Nth order)")
        ANNIVERSARY = "anniversary", gettext_lazy("Yearly anniversary of acquisition")
        CHECKIN = "checkin", gettext_lazy("Recurring check-in")
        AT_RISK = "at_risk", gettext_lazy("At risk (before the lapse)")
        LAPSED = "lapsed", gettext_lazy("Lapsed or cancelled (win-back)")
        COMPLAINT_RESOLVED = "complaint_resolved", gettext_lazy("Complaint resolved")
        NPS_DETRACTOR = "nps_detractor", gettext_lazy("NPS detractor (0-6)")

    name = models.CharField(max_length=100, verbose_name=gettext_lazy("name"))
    trigger = models.CharField(max_length=20, choices=Trigger.choices, verbose_name=gettext_lazy("trigger"))
    enabled = models.BooleanField(default=True, verbose_name=gettext_lazy("enabled"))
    marketing = models.BooleanField(
        default=True,
        help_text=gettext_lazy("Marketing messages need consent (or an existing relationship), carry an unsubscribe link and "
                  "count towards the frequency cap. Untick only for transactional messages such as an order thank-you."),
        verbose_name=gettext_lazy("marketing"),
    )
    # The audience filter: who the cadence is for.
    min_orders = models.PositiveIntegerField(default=0, validators=bounded(CADENCE_BOUNDS, "min_orders"),
                                             help_text=gettext_lazy("Only customers with at least this many orders."), verbose_name=gettext_lazy("minimum orders"))
    min_total_spent = models.DecimalField(
        max_digits=14, decimal_places=2, default=Decimal("0"), validators=[MinValueValidator(Decimal("0"))],
        help_text=gettext_lazy("Only customers who spent at least this much in all."),
        verbose_name=gettext_lazy("minimum total spent"),
    )
    locales = models.CharField(max_length=100, blank=True, help_text=gettext_lazy("Comma-separated locales (e.g. 'en,ar'); blank: everyone."), verbose_name=gettext_lazy("locales"))
    # Trigger parameters.
    milestones = models.CharField(max_length=100, blank=True, default="5,10,25,50,100", validators=[validate_milestones],
                                  help_text=gettext_lazy("Milestone trigger: the order numbers to celebrate, comma-separated."), verbose_name=gettext_lazy("milestones"))
    interval_days = models.PositiveIntegerField(default=90, validators=bounded(CADENCE_BOUNDS, "interval_days"),
                                                help_text=gettext_lazy("Check-in trigger: days between check-ins."), verbose_name=gettext_lazy("days between check-ins"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=gettext_lazy("created"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=gettext_lazy("updated"))

    class Meta:
        ordering = ["trigger", "name"]
        verbose_name = gettext_lazy("cadence")
        verbose_name_plural = gettext_lazy("cadences")
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
            raise ValidationError({"milestones": _("A milestone cadence needs at least one order number.")})


class CadenceStep(models.Model):
    class Channel(models.TextChoices):
        EMAIL = "email", gettext_lazy("Email")
        SMS = "sms", gettext_lazy("SMS")
        CALL = "call", gettext_lazy("Call (a task in the agents' queue)")

    cadence = models.ForeignKey(Cadence, on_delete=models.CASCADE, related_name="steps", verbose_name=gettext_lazy("cadence"))
    position = models.PositiveSmallIntegerField(default=1, verbose_name=gettext_lazy("position"))
    offset_days = models.PositiveIntegerField(default=0, validators=bounded(STEP_BOUNDS, "offset_days"),
                                              help_text=gettext_lazy("Days after the trigger."), verbose_name=gettext_lazy("days after the trigger"))
    offset_hours = models.PositiveIntegerField(default=0, validators=bounded(STEP_BOUNDS, "offset_hours"),
                                               help_text=gettext_lazy("Plus this many hours."), verbose_name=gettext_lazy("hours after the trigger"))
    channel = models.CharField(max_length=8, choices=Channel.choices, default=Channel.EMAIL, verbose_name=gettext_lazy("channel"))
    template = models.CharField(max_length=40, choices=TEMPLATE_CHOICES, blank=True,
                                help_text=gettext_lazy("The message (email and SMS); a call step needs none."), verbose_name=gettext_lazy("template"))
    offer = models.ForeignKey(Offer, null=True, blank=True, on_delete=models.PROTECT,
                              help_text=gettext_lazy("A unique coupon for this offer goes with the message."), verbose_name=gettext_lazy("offer"))
    enabled = models.BooleanField(default=True, verbose_name=gettext_lazy("enabled"))

    class Meta:
        ordering = ["cadence", "position", "id"]
        verbose_name = gettext_lazy("cadence step")
        verbose_name_plural = gettext_lazy("cadence steps")
        constraints = range_constraints("cadencestep", STEP_BOUNDS)

    def __str__(self) -> str:
        # Translators: a cadence's step, e.g. "Win-back: step 2 (Email, +3 days, 0:00:00)".
        return _("%(cadence)s: step %(position)s (%(channel)s, +%(offset)s)") % {
            "cadence": self.cadence.name, "position": self.position, "channel": self.get_channel_display(),
            "offset": self.offset}

    @property
    def offset(self) -> dt.timedelta:
        return dt.timedelta(days=self.offset_days, hours=self.offset_hours)

    @property
    def is_discount(self) -> bool:
        """A "we miss you" or an offer: never while a complaint is open (a recovery call instead)."""
        return self.offer_id is not None or self.cadence.trigger == Cadence.Trigger.LAPSED

    def clean(self) -> None:
        if self.channel != self.Channel.CALL and not self.template:
            raise ValidationError({"template": _("An email or SMS step needs a template.")})


class Touchpoint(models.Model):
    """The outbox: one row per message (or call task) a cadence produced, sent at most once."""

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", gettext_lazy("Scheduled")
        SENDING = "sending", gettext_lazy("Sending")
        SENT = "sent", gettext_lazy("Sent")
        SUPPRESSED = "suppressed", gettext_lazy("Suppressed (a rule said no; see the reason)")
        CANCELLED = "cancelled", gettext_lazy("Cancelled (no longer applies)")
        FAILED = "failed", gettext_lazy("Failed")

    class Reason(models.TextChoices):
        NO_EMAIL = "no_email", gettext_lazy("No email address")
        NO_PHONE = "no_phone", gettext_lazy("No phone number")
        NO_CONSENT = "no_consent", gettext_lazy("No marketing consent")
        OPTED_OUT = "opted_out", gettext_lazy("Opted out")
        DO_NOT_CALL = "do_not_call", gettext_lazy("Do not call")
        HOLDOUT = "holdout", gettext_lazy("In the holdout (never contacted)")
        CASE_IN_PROGRESS = "case_in_progress", gettext_lazy("An agent is working their case")
        OPEN_COMPLAINT = "open_complaint", gettext_lazy("Open complaint (routed to a recovery call)")
        FREQUENCY_CAP = "frequency_cap", gettext_lazy("Frequency cap reached")
        QUIET_HOURS = "quiet_hours", gettext_lazy("Quiet hours (deferred)")
        NO_LONGER_APPLIES = "no_longer_applies", gettext_lazy("No longer applies")
        DISABLED = "disabled", gettext_lazy("Cadence or step disabled")
        EXPIRED = "expired", gettext_lazy("Too late to send")
        MAIL_SERVER = "mail_server", gettext_lazy("Waiting for the mail server")
        TEMPORARY_ERROR = "temporary_error", gettext_lazy("Temporary error (retrying)")

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="touchpoints", db_index=False, verbose_name=gettext_lazy("customer"))
    step = models.ForeignKey(CadenceStep, on_delete=models.PROTECT, related_name="touchpoints", verbose_name=gettext_lazy("step"))
    channel = models.CharField(max_length=8, choices=CadenceStep.Channel.choices, verbose_name=gettext_lazy("channel"))
    # What triggered it: when (the order, the event, the anniversary...) and a label for people.
    anchor_at = models.DateTimeField(verbose_name=gettext_lazy("trigger time"))
    anchor = models.CharField(max_length=64, blank=True, verbose_name=gettext_lazy("trigger"))
    due_at = models.DateTimeField(verbose_name=gettext_lazy("due"))
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SCHEDULED, verbose_name=gettext_lazy("status"))
    # Unique: the same trigger can never produce the same step twice, whoever materialises it and how often.
    idempotency_key = models.CharField(max_length=120, verbose_name=gettext_lazy("idempotency key"))
    # A dispatcher queued it for a worker until then (a lost task is picked up again after it).
    queued_until = models.DateTimeField(null=True, blank=True, verbose_name=gettext_lazy("queued until"))
    # A worker holds it for sending until then (a killed worker's touchpoint is sent after it).
    lease_until = models.DateTimeField(null=True, blank=True, verbose_name=gettext_lazy("held for sending until"))
    attempts = models.PositiveSmallIntegerField(default=0, verbose_name=gettext_lazy("attempts"))
    # After a temporary error: when it is tried next (it waits until then though due), and when the errors
    # began (the retry window, TOUCHPOINT_RETRY_WINDOW_HOURS, counts from there). Both empty otherwise.
    retry_at = models.DateTimeField(null=True, blank=True, verbose_name=gettext_lazy("next attempt"))
    retry_since = models.DateTimeField(null=True, blank=True, verbose_name=gettext_lazy("errors since"))
    last_error = models.TextField(blank=True, verbose_name=gettext_lazy("last error"))
    reason = models.CharField(max_length=20, choices=Reason.choices, blank=True,
                              help_text=gettext_lazy("Why it was suppressed, cancelled or last deferred."), verbose_name=gettext_lazy("reason"))
    sent_at = models.DateTimeField(null=True, blank=True, verbose_name=gettext_lazy("sent"))
    provider_message_id = models.CharField(max_length=200, blank=True, verbose_name=gettext_lazy("provider message ID"))
    subject = models.CharField(max_length=300, blank=True, verbose_name=gettext_lazy("subject"))
    contact = models.OneToOneField(Contact, null=True, blank=True, on_delete=models.PROTECT, related_name="touchpoint", verbose_name=gettext_lazy("contact"))
    coupon = models.OneToOneField(Coupon, null=True, blank=True, on_delete=models.PROTECT, related_name="touchpoint", verbose_name=gettext_lazy("coupon"))
    case = models.ForeignKey(WinbackCase, null=True, blank=True, on_delete=models.PROTECT, related_name="touchpoints", verbose_name=gettext_lazy("case"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=gettext_lazy("created"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=gettext_lazy("updated"))

    class Meta:
        ordering = ["-due_at", "-id"]
        verbose_name = gettext_lazy("touchpoint")
        verbose_name_plural = gettext_lazy("touchpoints")
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
        return _("%(channel)s to customer %(customer)s due %(due)s (%(status)s)") % {
            "channel": self.get_channel_display(), "customer": self.customer_id,
            "due": f"{self.due_at:%Y-%m-%d %H:%M}", "status": self.get_status_display()}


class TouchpointSettings(models.Model):
    """The sending rules managers set (one row)."""

    cap_count = models.PositiveSmallIntegerField(default=2, validators=bounded(SETTINGS_BOUNDS, "cap_count"),
                                                 help_text=gettext_lazy("At most this many touches per customer..."), verbose_name=gettext_lazy("touches at most"))
    cap_days = models.PositiveSmallIntegerField(default=7, validators=bounded(SETTINGS_BOUNDS, "cap_days"),
                                                help_text=gettext_lazy("...in this many days, all channels."), verbose_name=gettext_lazy("in days"))
    transactional_exempt = models.BooleanField(
        default=True, help_text=gettext_lazy("Transactional messages (the order thank-you) neither wait for nor count towards the cap."), verbose_name=gettext_lazy("transactional exempt"))
    quiet_start = models.TimeField(default=dt.time(21, 0), help_text=gettext_lazy("No sends from this local time..."), verbose_name=gettext_lazy("quiet hours start"))
    quiet_end = models.TimeField(default=dt.time(8, 0), help_text=gettext_lazy("...until this local time (the customer's zone)."), verbose_name=gettext_lazy("quiet hours end"))
    retry_base_seconds = models.PositiveIntegerField(default=60, validators=bounded(SETTINGS_BOUNDS, "retry_base_seconds"),
                                                     help_text=gettext_lazy("After a temporary error the first retry waits this long, each next one twice as long, "
                  "up to TOUCHPOINT_RETRY_MAX_DELAY_SECONDS; retries go on for TOUCHPOINT_RETRY_WINDOW_HOURS."), verbose_name=gettext_lazy("first retry after (seconds)"))
    stale_after_hours = models.PositiveIntegerField(default=48, validators=bounded(SETTINGS_BOUNDS, "stale_after_hours"),
                                                    help_text=gettext_lazy("A touchpoint this late (e.g. after an outage) is not sent any more."), verbose_name=gettext_lazy("too late after (hours)"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=gettext_lazy("updated"))

    class Meta:
        verbose_name = verbose_name_plural = gettext_lazy("touchpoint settings")
        constraints = range_constraints("touchpointsettings", SETTINGS_BOUNDS)

    def __str__(self) -> str:
        return ngettext("At most %(count)s per %(days)s day; quiet hours %(start)s-%(end)s",
                        "At most %(count)s per %(days)s days; quiet hours %(start)s-%(end)s", self.cap_days) % {
            "count": self.cap_count, "days": self.cap_days, "start": f"{self.quiet_start:%H:%M}",
            "end": f"{self.quiet_end:%H:%M}"}

    def clean(self) -> None:
        if self.quiet_start == self.quiet_end:
            raise ValidationError({"quiet_end": _("Quiet hours must start and end at different times.")})


class TouchpointScanState(models.Model):
    """One row: where the materialiser got to, so each tick looks only at what is new."""

    last_run_at = models.DateTimeField(null=True, blank=True, verbose_name=gettext_lazy("last run"))
    last_daily_on = models.DateField(null=True, blank=True, verbose_name=gettext_lazy("last daily run"))
    # [(run instant, highest order id then)] of the last runs: where new orders start (materialize.py).
    order_marks = models.JSONField(default=list, blank=True, verbose_name=gettext_lazy("order marks"))

    class Meta:
        verbose_name = verbose_name_plural = gettext_lazy("touchpoint scan state")

    def __str__(self) -> str:
        return _("last run %(time)s") % {"time": self.last_run_at}


# A step text's bounds: the email body is a letter, not a document; an SMS is a few segments at most.
STEP_TEXT_BODY_MAX = 5000
STEP_TEXT_SMS_MAX = 480


class CadenceStepText(models.Model):
    """A step's message in one language, written by a manager: it replaces the step's file template for
    customers of that language (touchpoints/services/rendering.py). The coupon box, survey links and
    unsubscribe footer still come from the product's layout, so a manager cannot leave them out."""

    step = models.ForeignKey(CadenceStep, on_delete=models.CASCADE, related_name="texts", verbose_name=gettext_lazy("step"))
    language = models.CharField(max_length=CONTENT_LANGUAGE_MAX_LENGTH, choices=CONTENT_LANGUAGE_CHOICES,
                                verbose_name=gettext_lazy("language"))
    subject = models.CharField(max_length=200, blank=True,
                               help_text=gettext_lazy("The email's subject line."), verbose_name=gettext_lazy("subject"))
    body = models.TextField(
        max_length=STEP_TEXT_BODY_MAX, blank=True,
        help_text=gettext_lazy("Plain text; an empty line starts a new paragraph. You may use {first_name}, {brand}, "
                               "{offer} and {code}; the coupon, survey links and unsubscribe link are added for you."),
        verbose_name=gettext_lazy("email text"))
    sms = models.CharField(
        max_length=STEP_TEXT_SMS_MAX, blank=True,
        help_text=gettext_lazy("You may use {first_name}, {brand}, {offer}, {code} and {shop_url}; "
                               "the unsubscribe link is added for you."),
        verbose_name=gettext_lazy("SMS text"))

    class Meta:
        ordering = ["step", "language"]
        verbose_name = gettext_lazy("step text")
        verbose_name_plural = gettext_lazy("step texts")
        constraints = [
            models.UniqueConstraint(fields=["step", "language"], name="cadence_step_text_unique"),
            content_language_constraint("cadencesteptext"),
            models.CheckConstraint(condition=LessThanOrEqual(Length("body"), STEP_TEXT_BODY_MAX),
                                   name="cadencesteptext_body_length"),
            models.CheckConstraint(condition=LessThanOrEqual(Length("sms"), STEP_TEXT_SMS_MAX),
                                   name="cadencesteptext_sms_length"),
        ]

    def __str__(self) -> str:
        return self.get_language_display()

    def is_complete_for(self, channel: str) -> bool:
        """It has what the channel sends: an email's subject and text, an SMS's text."""
        if channel == CadenceStep.Channel.SMS:
            return bool(self.sms.strip())
        return bool(self.subject.strip() and self.body.strip())

    def clean(self) -> None:
        if not (self.subject.strip() and self.body.strip()) and not self.sms.strip():
            raise ValidationError(gettext_lazy("Write the email's subject and text, or the SMS text."))
