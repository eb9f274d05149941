import uuid
from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext, gettext_lazy as _

from core.bounds import DB_LATEST_DATETIME, EARLIEST_BUSINESS_DATETIME, validate_business_datetime
from crm.validators import validate_currency, validate_locale, validate_time_zone


def new_external_id() -> str:
    return uuid.uuid4().hex


def business_instant_check(field: str, *, nullable: bool = False) -> models.CheckConstraint:
    """The database's side of core.bounds: a business instant lies in [1970, 2200) (the application
    narrows the upper end to a year from now; a CHECK cannot read the clock)."""
    in_range = Q(**{f"{field}__gte": EARLIEST_BUSINESS_DATETIME, f"{field}__lt": DB_LATEST_DATETIME})
    return models.CheckConstraint(
        condition=in_range | Q(**{f"{field}__isnull": True}) if nullable else in_range,
        name=f"%(app_label)s_%(class)s_{field}_in_range",
    )


# The business instants a person or system enters, per model (bounded by core.bounds); the migration that
# added their CHECKs clamps older rows that were out of range, with an audit row each.
BUSINESS_INSTANTS = {
    "customer": ("acquired_at", "cancelled_at", "email_consent_at", "do_not_call_since"),
    "cancellation": ("cancelled_at",),
    "order": ("ordered_at",),
    "contact": ("occurred_at",),
    "complaint": ("opened_at", "resolved_at"),
    "feedback": ("responded_at",),
}


class Customer(models.Model):
    class Status(models.TextChoices):
        PROSPECT = "prospect", _("Prospect (no order yet)")
        ACTIVE = "active", _("Active")
        AT_RISK = "at_risk", _("At risk")
        LAPSED = "lapsed", _("Lapsed")
        CANCELLED = "cancelled", _("Cancelled")

    class Consent(models.TextChoices):
        UNKNOWN = "unknown", _("Unknown (no marketing)")
        GRANTED = "granted", _("Consent given")
        RELATIONSHIP = "relationship", _("Existing customer relationship")
        WITHDRAWN = "withdrawn", _("Opted out")

    external_id = models.CharField(_("external id"), max_length=64, help_text=_("The key other systems use."))
    name = models.CharField(_("name"), max_length=200)
    email = models.EmailField(_("email"), blank=True, db_index=True)
    phone = models.CharField(_("phone"), max_length=20, blank=True, help_text=_("E.164, e.g. +33612345678."))
    timezone = models.CharField(_("timezone"), 
        max_length=64,
        blank=True,
        validators=[validate_time_zone],
        help_text=_("IANA zone; when blank it is derived from the phone number where unambiguous."),
    )
    # The zones the customer may be in, comma-separated (their own zone, else every zone their phone number
    # may be in); kept by the services. Calls happen only when it is calling hours in all of them.
    call_zones = models.CharField(_("call zones"), max_length=200, blank=True, editable=False)
    locale = models.CharField(_("locale"), max_length=16, default="en", validators=[validate_locale])
    acquired_at = models.DateTimeField(_("acquired at"), 
        null=True, blank=True, validators=[validate_business_datetime], help_text=_("Contract start if given, else the first order (the earlier).")
    )
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True, validators=[validate_business_datetime])
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.PROSPECT, db_index=True)
    email_consent = models.CharField(_("email consent"), max_length=12, choices=Consent.choices, default=Consent.UNKNOWN)
    email_consent_at = models.DateTimeField(_("email consent at"), null=True, blank=True, validators=[validate_business_datetime])
    email_consent_source = models.CharField(_("email consent source"), max_length=100, blank=True)
    do_not_call_since = models.DateTimeField(_("do not call since"), null=True, blank=True)
    # Set when the person's email, phone or shop key is on the suppression list (an erasure asked for it):
    # consent stays off and do-not-call on for good, and the senders check it again (touchpoints rules).
    suppressed_at = models.DateTimeField(_("suppressed at"), null=True, blank=True, editable=False)
    # Set once the personal data was erased (crm.services.privacy); the row stays for the KPIs.
    erased_at = models.DateTimeField(_("erased at"), null=True, blank=True, editable=False)
    # Kept right by the order services (one UPDATE per order or per import batch).
    last_order_at = models.DateTimeField(_("last order at"), null=True, blank=True, db_index=True)
    order_count = models.PositiveIntegerField(_("order count"), default=0)
    total_spent = models.DecimalField(_("total spent"), max_digits=14, decimal_places=2, default=Decimal("0"))
    # Bumped by every change the lifecycle depends on (an order, a cancellation, a new acquisition date);
    # the lifecycle engine records the version it computed, so it knows whom to recompute without races.
    history_version = models.PositiveIntegerField(_("history version"), default=0)
    lifecycle_version = models.PositiveIntegerField(_("lifecycle version"), default=0)
    # The next instant a lifecycle event (at risk, lapse, a dated cancellation) can fall due by itself.
    lifecycle_due_at = models.DateTimeField(_("lifecycle due at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        ordering = ["id"]
        # Managers only (core.roles): integrations and imports never take a customer off do-not-call.
        permissions = [
            ("clear_do_not_call", "Can clear a customer's do-not-call, with a reason"),
            ("export_customer", "Can export a customer's personal data, with a reason"),
            ("erase_customer", "Can erase a customer's personal data, with a reason"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["external_id"], name="customer_external_id_unique"),
            models.CheckConstraint(condition=Q(order_count__gte=0), name="customer_order_count_gte_0"),
            models.CheckConstraint(condition=Q(total_spent__gte=0), name="customer_total_spent_gte_0"),
            *(business_instant_check(f, nullable=True) for f in BUSINESS_INSTANTS["customer"]),
        ]
        indexes = [
            # Tiny partial indexes: only the customers the lifecycle engine still has to look at.
            models.Index(
                fields=["id"], name="customer_lifecycle_stale",
                condition=~Q(history_version=models.F("lifecycle_version")),
            ),
            models.Index(fields=["lifecycle_due_at"], name="customer_lifecycle_due", condition=Q(lifecycle_due_at__isnull=False)),
        ]

    def __str__(self) -> str:
        # Translators: a customer wherever one is named: their name, then their key, e.g. "Anna Kovács (CUST-0042)".
        return gettext("%(name)s (%(id)s)") % {"name": self.name, "id": self.external_id}

    @property
    def do_not_call(self) -> bool:
        return self.do_not_call_since is not None


class Cancellation(models.Model):
    """An explicit cancellation (subscription or contract): a lapse at its own date (docs/metrics.md s.1)."""

    customer = models.ForeignKey(Customer, verbose_name=_("customer"), on_delete=models.PROTECT, related_name="cancellations", db_index=False)
    cancelled_at = models.DateTimeField(_("cancelled at"), validators=[validate_business_datetime])
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("cancellation")
        verbose_name_plural = _("cancellations")
        ordering = ["customer", "cancelled_at"]
        constraints = [
            models.UniqueConstraint(fields=["customer", "cancelled_at"], name="cancellation_unique"),
            business_instant_check("cancelled_at"),
        ]

    def __str__(self) -> str:
        return gettext("Cancelled on %(date)s") % {"date": f"{self.cancelled_at:%Y-%m-%d}"}


class Order(models.Model):
    external_id = models.CharField(_("external id"), max_length=64)
    # Indexed by order_customer_time (customer first), so no index of its own.
    customer = models.ForeignKey(Customer, verbose_name=_("customer"), on_delete=models.PROTECT, related_name="orders", db_index=False)
    ordered_at = models.DateTimeField(_("ordered at"), validators=[validate_business_datetime])
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2, validators=[MinValueValidator(0)])
    currency = models.CharField(_("currency"), max_length=3, validators=[validate_currency])
    coupon_code = models.CharField(_("coupon code"), max_length=64, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    # The import run (core.BatchRun) that created the order; its one audit record says who, which file and what
    # came of it. A bare id, neither foreign key nor index: a constraint would cost a lookup per imported row and
    # an index upkeep on every order, while only a person tracing one run reads orders by it (a rare scan).
    import_run_id = models.BigIntegerField(_("import run"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["-ordered_at", "-id"]
        # amount included: the KPI refresh sums its customers' orders per month from the index alone.
        indexes = [models.Index(fields=["customer", "ordered_at"], include=["amount"], name="order_customer_time")]
        constraints = [
            models.UniqueConstraint(fields=["external_id"], name="order_external_id_unique"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="order_amount_gte_0"),
            business_instant_check("ordered_at"),
        ]

    def __str__(self) -> str:
        return gettext("Order %(id)s") % {"id": self.external_id}


class Contact(models.Model):
    class Channel(models.TextChoices):
        CALL = "call", _("Call")
        EMAIL = "email", _("Email")
        SMS = "sms", _("SMS")
        VISIT = "visit", _("Visit")
        NOTE = "note", _("Note")

    class Direction(models.TextChoices):
        OUTBOUND = "outbound", _("Outbound")
        INBOUND = "inbound", _("Inbound")
        INTERNAL = "internal", _("Internal (note)")

    class Outcome(models.TextChoices):
        REACHED_WILL_RETURN = "reached_will_return", _("Reached - will return")
        REACHED_DECLINED = "reached_declined", _("Reached - declined")
        CALLBACK_REQUESTED = "callback_requested", _("Callback requested")
        NO_ANSWER = "no_answer", _("No answer")
        VOICEMAIL = "voicemail", _("Voicemail")
        BUSY = "busy", _("Busy")
        WRONG_NUMBER = "wrong_number", _("Wrong number")
        DO_NOT_CALL = "do_not_call", _("Do not call")
        COMPLAINT_ESCALATED = "complaint_escalated", _("Complaint escalated")
        SENT = "sent", _("Sent")
        REPLIED = "replied", _("Replied")
        OTHER = "other", _("Other")

    external_id = models.CharField(_("external id"), max_length=64, default=new_external_id)
    customer = models.ForeignKey(Customer, verbose_name=_("customer"), on_delete=models.PROTECT, related_name="contacts")
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices)
    direction = models.CharField(_("direction"), max_length=8, choices=Direction.choices, default=Direction.OUTBOUND)
    occurred_at = models.DateTimeField(_("occurred at"), validators=[validate_business_datetime])
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("agent"), null=True, blank=True, on_delete=models.SET_NULL, related_name="contacts"
    )
    outcome = models.CharField(_("outcome"), max_length=24, choices=Outcome.choices, blank=True)
    notes = models.TextField(_("notes"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        ordering = ["-occurred_at", "-id"]
        indexes = [models.Index(fields=["customer", "occurred_at"], name="contact_customer_time")]
        constraints = [
            models.UniqueConstraint(fields=["external_id"], name="contact_external_id_unique"),
            business_instant_check("occurred_at"),
        ]

    def __str__(self) -> str:
        # Translators: a contact wherever one is named, e.g. "Call on 2026-12-01".
        return gettext("%(channel)s on %(date)s") % {"channel": self.get_channel_display(),
                                                    "date": f"{self.occurred_at:%Y-%m-%d}"}


class Complaint(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        IN_PROGRESS = "in_progress", _("In progress")
        RESOLVED = "resolved", _("Resolved")

    class Category(models.TextChoices):
        PRODUCT = "product", _("Product quality")
        DELIVERY = "delivery", _("Delivery")
        BILLING = "billing", _("Billing")
        SERVICE = "service", _("Service or support")
        PRICE = "price", _("Price")
        OTHER = "other", _("Other")

    class Severity(models.TextChoices):
        LOW = "low", _("Low")
        MEDIUM = "medium", _("Medium")
        HIGH = "high", _("High")
        CRITICAL = "critical", _("Critical")

    external_id = models.CharField(_("external id"), max_length=64, default=new_external_id)
    customer = models.ForeignKey(Customer, verbose_name=_("customer"), on_delete=models.PROTECT, related_name="complaints")
    opened_at = models.DateTimeField(_("opened at"), validators=[validate_business_datetime])
    category = models.CharField(_("category"), max_length=12, choices=Category.choices, default=Category.OTHER)
    severity = models.CharField(_("severity"), max_length=8, choices=Severity.choices, default=Severity.MEDIUM)
    summary = models.TextField(_("summary"))
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.OPEN, db_index=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True, validators=[validate_business_datetime])
    resolution = models.TextField(_("resolution"), blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("owner"), null=True, blank=True, on_delete=models.SET_NULL, related_name="complaints"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("complaint")
        verbose_name_plural = _("complaints")
        ordering = ["-opened_at", "-id"]
        indexes = [models.Index(fields=["customer", "status"], name="complaint_customer_status")]
        constraints = [
            models.UniqueConstraint(fields=["external_id"], name="complaint_external_id_unique"),
            models.CheckConstraint(
                condition=(Q(status="resolved") & Q(resolved_at__isnull=False))
                | (~Q(status="resolved") & Q(resolved_at__isnull=True)),
                name="complaint_resolved_at_iff_resolved",
            ),
            business_instant_check("opened_at"),
            business_instant_check("resolved_at", nullable=True),
        ]

    def __str__(self) -> str:
        # Translators: a complaint wherever one is named, e.g. "Delivery complaint 3f2a…".
        return gettext("%(category)s complaint %(id)s") % {"category": self.get_category_display(),
                                                          "id": self.external_id}


class Feedback(models.Model):
    class Kind(models.TextChoices):
        NPS = "nps", _("NPS (0-10)")
        CSAT = "csat", _("CSAT (1-5)")
        CES = "ces", _("CES (1-7)")

    external_id = models.CharField(_("external id"), max_length=64, default=new_external_id)
    customer = models.ForeignKey(Customer, verbose_name=_("customer"), on_delete=models.PROTECT, related_name="feedback")
    kind = models.CharField(_("kind"), max_length=4, choices=Kind.choices)
    score = models.SmallIntegerField(_("score"))
    comment = models.TextField(_("comment"), blank=True)
    responded_at = models.DateTimeField(_("responded at"), validators=[validate_business_datetime])
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("feedback")
        verbose_name_plural = _("feedback")
        ordering = ["-responded_at", "-id"]
        indexes = [models.Index(fields=["kind", "responded_at"], name="feedback_kind_time")]
        constraints = [
            models.UniqueConstraint(fields=["external_id"], name="feedback_external_id_unique"),
            models.CheckConstraint(
                condition=(Q(kind="nps") & Q(score__gte=0) & Q(score__lte=10))
                | (Q(kind="csat") & Q(score__gte=1) & Q(score__lte=5))
                | (Q(kind="ces") & Q(score__gte=1) & Q(score__lte=7)),
                name="feedback_score_in_range_for_kind",
            ),
            business_instant_check("responded_at"),
        ]

    def __str__(self) -> str:
        return f"{self.kind.upper()} {self.score}"


class AuditEntry(models.Model):
    """Who changed what, when: written by the services for every create, update and cancel."""

    class Action(models.TextChoices):
        CREATE = "create", _("Created")
        UPDATE = "update", _("Updated")
        CANCEL = "cancel", _("Cancelled")
        EXPORT = "export", _("Personal data exported")
        ERASE = "erase", _("Personal data erased")
        # Only records that are inputs, not history (acquisition spend entered by mistake).
        DELETE = "delete", _("Deleted")

    at = models.DateTimeField(_("at"))
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("actor"), null=True, blank=True, on_delete=models.SET_NULL)
    # Who, when there is no user (an import file, the demo seeder, a task); kept even if the user goes.
    actor_label = models.CharField(_("actor label"), max_length=150)
    action = models.CharField(_("action"), max_length=8, choices=Action.choices)
    entity = models.CharField(_("entity"), max_length=30, help_text=_("Model label, e.g. crm.order."))
    entity_id = models.BigIntegerField(_("entity id"))
    # Indexed by audit_customer_time.
    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    changes = models.JSONField(_("changes"), default=dict, help_text=_("{field: [old, new]}; on create, {field: new}."))

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit entries")
        ordering = ["-id"]  # the id follows time and is indexed
        indexes = [
            models.Index(fields=["entity", "entity_id"], name="audit_entity"),
            models.Index(fields=["customer", "at"], name="audit_customer_time"),
            # The admin's period filter and date hierarchy over millions of rows.
            models.Index(fields=["at"], name="audit_time"),
        ]

    def __str__(self) -> str:
        return gettext("%(action)s %(entity)s #%(id)s") % {"action": self.get_action_display(), "entity": self.entity,
                                                          "id": self.entity_id}


class SuppressionEntry(models.Model):
    """A person who must never be contacted again (they asked for erasure), kept only as keyed hashes of
    their email, phone and shop key: crm.services.suppression checks every created or changed customer
    against it. No plain value is stored, so the list itself holds no personal data to erase."""

    class Kind(models.TextChoices):
        EMAIL = "email", _("Email address")
        PHONE = "phone", _("Phone number")
        EXTERNAL_ID = "external_id", _("Shop customer key")

    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    # HMAC-SHA256 (hex) of "kind:normalised value" under the suppression key.
    digest = models.CharField(_("digest"), max_length=64)
    # Which key made the digest (a fingerprint, not the key): after a rotation, entries of a key no longer
    # configured would silently stop matching; /health/ reports them (crm.health).
    key_id = models.CharField(_("key id"), max_length=16)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    source = models.CharField(_("source"), max_length=40, help_text=_("Why it was listed, e.g. 'erasure'."))

    class Meta:
        verbose_name = _("suppression entry")
        verbose_name_plural = _("suppression entries")
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["digest"], name="suppression_digest_unique")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.digest[:12]}…"


# Order lines and acquisition spend (issue 17; docs/metrics.md section 6): bounds that the model, the API, the
# import and the database agree on.
LINE_QUANTITY_MAX = 100_000
AMOUNT_MAX = Decimal("9999999999.99")  # what max_digits=12, decimal_places=2 holds
SPEND_AMOUNT_MAX = Decimal("999999999999.99")  # max_digits=14
SPEND_EARLIEST_MONTH = EARLIEST_BUSINESS_DATETIME.date()


class OrderLine(models.Model):
    """One product on an order (optional: an order without lines counts as one line of an unknown category).
    The lines of an order sum to its amount (crm/services/orders.py refuses an order whose lines do not)."""

    order = models.ForeignKey(Order, verbose_name=_("order"), on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveSmallIntegerField(_("position"), help_text=_("The line's place on the order, from 1."))
    product_id = models.CharField(_("product id"), max_length=64)
    product_name = models.CharField(_("product name"), max_length=200, blank=True)
    category = models.CharField(_("category"), max_length=100, blank=True,
                                help_text=_("Blank: unknown (cross-sell counts only known categories)."))
    quantity = models.PositiveIntegerField(_("quantity"), default=1)
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2,
                                 help_text=_("The line's total (quantity x unit price, after discounts)."))

    class Meta:
        verbose_name = _("order line")
        verbose_name_plural = _("order lines")
        ordering = ["order", "position"]
        constraints = [
            models.UniqueConstraint(fields=["order", "position"], name="order_line_position_unique"),
            models.CheckConstraint(condition=Q(position__gte=1), name="order_line_position_gte_1"),
            models.CheckConstraint(condition=Q(quantity__gte=1, quantity__lte=LINE_QUANTITY_MAX),
                                   name="order_line_quantity_in_range"),
            models.CheckConstraint(condition=Q(amount__gte=0, amount__lte=AMOUNT_MAX), name="order_line_amount_in_range"),
        ]

    def __str__(self) -> str:
        return gettext("%(quantity)s x %(product)s") % {"quantity": self.quantity, "product": self.product_name or self.product_id}


class AcquisitionSpend(models.Model):
    """What the business spent to acquire customers in a month, optionally per channel (blank: all channels):
    the numerator of CAC (docs/metrics.md section 6). Entered in the admin, imported or posted by the API."""

    month = models.DateField(_("month"), help_text=_("The first day of the month."))
    channel = models.CharField(_("channel"), max_length=40, blank=True,
                               help_text=_("e.g. search ads, social, referral; blank: all channels together."))
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3, validators=[validate_currency])
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("acquisition spend")
        verbose_name_plural = _("acquisition spend")
        ordering = ["-month", "channel"]
        constraints = [
            models.UniqueConstraint(fields=["month", "channel"], name="acquisition_spend_month_channel_unique"),
            models.CheckConstraint(condition=Q(month__day=1), name="acquisition_spend_month_first_day"),
            models.CheckConstraint(condition=Q(month__gte=SPEND_EARLIEST_MONTH, month__lt=DB_LATEST_DATETIME.date()),
                                   name="acquisition_spend_month_in_range"),
            models.CheckConstraint(condition=Q(amount__gte=0, amount__lte=SPEND_AMOUNT_MAX),
                                   name="acquisition_spend_amount_in_range"),
        ]

    def __str__(self) -> str:
        data = {"month": f"{self.month:%Y-%m}", "channel": self.channel}
        return (gettext("Spend %(month)s, %(channel)s") if self.channel else gettext("Spend %(month)s")) % data
