import datetime as dt
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from core.models import UserPreference
from crm.models import AcquisitionSpend, Complaint, Contact, Customer, Feedback, Order, OrderLine


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("correct-horse-battery-staple")


class UserPreferenceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = UserPreference
        django_get_or_create = ("user",)

    user = factory.SubFactory(UserFactory)
    language = "ar"


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    external_id = factory.Sequence(lambda n: f"CUST-{n:06d}")
    name = factory.Faker("name")
    email = factory.LazyAttribute(lambda c: f"{c.external_id.lower()}@example.com")
    phone = ""
    locale = "en"


class OrderFactory(factory.django.DjangoModelFactory):
    """A bare order row; tests of the denormalised figures go through the services instead."""

    class Meta:
        model = Order

    external_id = factory.Sequence(lambda n: f"ORD-{n:07d}")
    customer = factory.SubFactory(CustomerFactory)
    ordered_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=10))
    amount = Decimal("49.90")
    currency = "EUR"


class OrderLineFactory(factory.django.DjangoModelFactory):
    """A bare line row: give ``order`` and ``position``; the lines' sum is the test's to keep to the amount."""

    class Meta:
        model = OrderLine

    order = factory.SubFactory(OrderFactory)
    position = 1
    product_id = factory.Sequence(lambda n: f"P-{n:05d}")
    product_name = "Tea"
    category = "Drinks"
    quantity = 1
    amount = factory.SelfAttribute("order.amount")


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contact

    customer = factory.SubFactory(CustomerFactory)
    channel = Contact.Channel.CALL
    occurred_at = factory.LazyFunction(timezone.now)


class ComplaintFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Complaint

    customer = factory.SubFactory(CustomerFactory)
    opened_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=3))
    summary = "Parcel arrived damaged"


class FeedbackFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Feedback

    customer = factory.SubFactory(CustomerFactory)
    kind = Feedback.Kind.NPS
    score = 9
    responded_at = factory.LazyFunction(timezone.now)


class OfferFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "winback.Offer"

    name = factory.Sequence(lambda n: f"Offer {n}")
    script = "Fifteen percent off your next order."
    code_prefix = "TEST"
    valid_days = 30


class CadenceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "touchpoints.Cadence"

    name = factory.Sequence(lambda n: f"Cadence {n}")
    trigger = "order"
    marketing = False


class CadenceStepFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "touchpoints.CadenceStep"

    cadence = factory.SubFactory(CadenceFactory)
    channel = "email"
    template = "thank_you"


# --- The rest of the models: one factory each, so no test hand-builds rows a factory can make. ----------------

class CancellationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "crm.Cancellation"

    customer = factory.SubFactory(CustomerFactory)
    cancelled_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=1))


class AuditEntryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "crm.AuditEntry"

    at = factory.LazyFunction(timezone.now)
    actor_label = "system"
    action = "update"
    entity = "crm.customer"
    customer = factory.SubFactory(CustomerFactory)
    entity_id = factory.LazyAttribute(lambda a: a.customer.pk)
    changes = factory.LazyFunction(lambda: {"name": ["Ada", "Ada King"]})


class DormancyPolicyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "winback.DormancyPolicy"

    note = "test policy"


class LifecycleEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "winback.LifecycleEvent"

    customer = factory.SubFactory(CustomerFactory)
    kind = "lapsed"
    occurred_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=3))


class WinbackCaseFactory(factory.django.DjangoModelFactory):
    """An open, callable win-back case (a lapse three days ago); pass fields to shape it."""

    class Meta:
        model = "winback.WinbackCase"

    customer = factory.SubFactory(CustomerFactory, phone="+33612345678", timezone="Europe/Paris")
    lapsed_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=3))
    opened_at = factory.LazyAttribute(lambda c: c.lapsed_at)
    ready = True
    revenue_12m = Decimal("100")
    priority = factory.LazyAttribute(lambda c: c.revenue_12m * (2 if c.is_recovery else 1))
    is_recovery = False


class CaseEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "winback.CaseEvent"

    case = factory.SubFactory(WinbackCaseFactory)
    kind = "opened"
    at = factory.LazyFunction(timezone.now)
    from_status = ""
    to_status = "open"
    actor = "lifecycle scan"
    is_recovery = False


class LeaveReasonFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "winback.LeaveReason"

    name = factory.Sequence(lambda n: f"Reason {n}")


class CouponFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "winback.Coupon"

    code = factory.Sequence(lambda n: f"TEST-{n:08d}")
    offer = factory.SubFactory(OfferFactory)
    customer = factory.SubFactory(CustomerFactory)
    issued_at = factory.LazyFunction(timezone.now)


class CouponReservationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "winback.CouponReservation"

    case = factory.SubFactory(WinbackCaseFactory)
    agent = factory.SubFactory(UserFactory)
    offer = factory.SubFactory(OfferFactory)
    code = factory.Sequence(lambda n: f"HOLD-{n:08d}")
    reserved_at = factory.LazyFunction(timezone.now)


class DispositionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "winback.Disposition"

    case = factory.SubFactory(WinbackCaseFactory)
    agent = factory.SubFactory(UserFactory)
    contact = factory.SubFactory(ContactFactory, customer=factory.SelfAttribute("..case.customer"))
    outcome = "no_answer"
    created_at = factory.LazyFunction(timezone.now)


class TouchpointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "touchpoints.Touchpoint"

    customer = factory.SubFactory(CustomerFactory)
    step = factory.SubFactory(CadenceStepFactory)
    channel = factory.LazyAttribute(lambda t: t.step.channel)
    anchor_at = factory.LazyFunction(timezone.now)
    due_at = factory.LazyAttribute(lambda t: t.anchor_at)
    idempotency_key = factory.Sequence(lambda n: f"test-{n}")


class MetricSnapshotFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "metrics.MetricSnapshot"

    metric = "churn_rate"
    start = dt.date(2025, 1, 1)
    end = dt.date(2025, 2, 1)
    computed_at = factory.LazyFunction(timezone.now)


class HeartbeatFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "core.Heartbeat"
        django_get_or_create = ("name",)

    name = "worker"
    beat_at = factory.LazyFunction(timezone.now)


class EnqueueFailureFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "core.EnqueueFailure"
        django_get_or_create = ("task",)

    task = "winback.lifecycle_refresh"
    count = 1
    last_at = factory.LazyFunction(timezone.now)


def _singleton(model_label: str) -> type[factory.django.DjangoModelFactory]:
    """The settings rows (one each, pk 1): get it, created with its defaults when missing."""
    meta = type("Meta", (), {"model": model_label, "django_get_or_create": ("id",)})
    return type(f"{model_label.split('.')[1]}Factory", (factory.django.DjangoModelFactory,), {"Meta": meta, "id": 1})


CallSettingsFactory = _singleton("winback.CallSettings")
LifecycleScanStateFactory = _singleton("winback.LifecycleScanState")
TouchpointSettingsFactory = _singleton("touchpoints.TouchpointSettings")
TouchpointScanStateFactory = _singleton("touchpoints.TouchpointScanState")
BusinessSettingsFactory = _singleton("core.BusinessSettings")


class SuppressionEntryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "crm.SuppressionEntry"

    kind = "email"
    digest = factory.Sequence(lambda n: f"{n:064x}")
    key_id = "0123456789abcdef"
    source = "erasure"


class ModelFitFactory(factory.django.DjangoModelFactory):
    """A usable BG/NBD fit with CDNOW's published parameters (Fader, Hardie & Lee 2005)."""

    class Meta:
        model = "predictions.ModelFit"

    model = "bgnbd"
    fitted_at = factory.LazyFunction(timezone.now)
    as_of = factory.LazyFunction(timezone.now)
    trigger = "test"
    customers = 2357
    repeat_buyers = 946
    purchase_days = 5400
    params = factory.LazyFunction(lambda: {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426})
    log_likelihood = -9582.4
    converged = True
    usable = True


class CustomerPredictionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "predictions.CustomerPrediction"

    customer = factory.SubFactory(CustomerFactory)
    fit = factory.SubFactory(ModelFitFactory)
    p_alive = 0.23
    p_alive_model = "bgnbd"
    expected_purchases_90d = 0.4
    expected_order_value = Decimal("55.00")
    predicted_clv_12m = Decimal("410.40")
    scored_at = factory.LazyFunction(timezone.now)


class RuleTuningFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "winback.RuleTuning"

    ran_at = factory.LazyFunction(timezone.now)
    calibration_end = factory.LazyFunction(lambda: timezone.localdate() - dt.timedelta(days=180))
    holdout_days = 180
    customers = 0
    reason = "Only 0 customers bought before the calibration end."


class OfferTranslationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "winback.OfferTranslation"
        django_get_or_create = ("offer", "language")

    offer = factory.SubFactory(OfferFactory)
    language = "ar"
    name = "خصم 15%"
    script = "خصم خمسة عشر بالمئة على طلبك القادم."


class LeaveReasonTranslationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "winback.LeaveReasonTranslation"
        django_get_or_create = ("reason", "language")

    reason = factory.SubFactory(LeaveReasonFactory)
    language = "ar"
    name = "السعر"


class CadenceStepTextFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "touchpoints.CadenceStepText"
        django_get_or_create = ("step", "language")

    step = factory.SubFactory(CadenceStepFactory)
    language = "ar"
    subject = "شكرًا لطلبك"
    body = "مرحبًا {first_name}،\n\nشكرًا لطلبك من {brand}."
    sms = "{brand}: شكرًا لطلبك، {first_name}."


class AcquisitionSpendFactory(factory.django.DjangoModelFactory):
    """A month's spend, all channels; tests of the input rules go through crm/services/spend.py instead."""

    class Meta:
        model = AcquisitionSpend

    month = factory.LazyFunction(lambda: timezone.now().date().replace(day=1))
    channel = ""
    amount = Decimal("1000.00")
    currency = "EUR"


class BatchRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "core.BatchRun"

    kind = "lifecycle_scan"
    label = "full lifecycle scan"
    status = "done"
    parts_total = 2
    parts_done = 2
    params = factory.LazyFunction(lambda: {"full": True, "now": "2026-12-01T00:00:00+00:00", "policy_version": 1})
    result = factory.LazyFunction(lambda: {"summary": "full lifecycle scan"})
    finished_at = factory.LazyFunction(timezone.now)


class BatchRunPartFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "core.BatchRunPart"

    run = factory.SubFactory(BatchRunFactory)
    index = factory.Sequence(lambda n: n)
    params = factory.LazyFunction(lambda: {"lo": 1, "hi": 100})
    done_at = factory.LazyFunction(timezone.now)
    result = factory.LazyFunction(lambda: {"customers": 100})
