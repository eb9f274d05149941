"""Over random customers and schedules, nothing is ever sent outside the rules (rules.py), and every
touchpoint that is not sent says why. The oracle below reads the database directly, at each send instant."""

import datetime as dt
import zoneinfo
from itertools import count

import pytest
from django.core import mail
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm.models import Complaint, Contact
from tests.factories import ComplaintFactory, ContactFactory, UserFactory
from tests.touchpoints.conftest import make_customer, make_step, make_touchpoint
from touchpoints.models import Touchpoint
from touchpoints.services.sending import touchpoint_send
from winback.models import Offer, WinbackCase

pytestmark = pytest.mark.django_db

BASE = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)
ZONES = ["UTC", "Asia/Tokyo", "America/Los_Angeles", "Europe/Paris", "Asia/Kolkata", "Pacific/Auckland"]
_n = count()

customers = st.fixed_dictionaries({
    # Weighted towards customers who may be emailed, so the other rules get exercised too.
    "consent": st.sampled_from(["granted", "granted", "relationship", "unknown", "withdrawn"]),
    "email": st.sampled_from([True, True, True, False]),
    "status": st.sampled_from(["at_risk", "lapsed", "active"]),
    "zone": st.sampled_from(ZONES),
    "complaint": st.booleans(),
    "case": st.sampled_from(["none", "plain", "holdout", "claimed", "callback", "awaiting"]),
    "recent_contacts": st.lists(st.integers(0, 10 * 24), max_size=2),  # hours before BASE
})
touchpoint_specs = st.fixed_dictionaries({
    "kind": st.sampled_from(["appreciation", "miss_you", "offer", "thank_you"]),
    "due_hours": st.integers(0, 80),  # due this many hours after BASE
    "send_delay_minutes": st.integers(0, 24 * 60),  # sent this late (a busy worker, a tick)
})
KINDS = {  # kind -> (trigger, marketing, template, offer?)
    "appreciation": ("at_risk", True, "appreciation", False),
    "miss_you": ("lapsed", True, "winback_miss_you", False),
    "offer": ("lapsed", True, "winback_offer", True),
    "thank_you": ("order", False, "thank_you", False),
}


def build(spec: dict):
    customer = make_customer(email=f"p{next(_n)}@example.com" if spec["email"] else "", email_consent=spec["consent"],
                             timezone=spec["zone"])
    customer.status = spec["status"]
    customer.save(update_fields=["status"])
    if spec["complaint"]:
        ComplaintFactory(customer=customer, status=Complaint.Status.OPEN)
    case = spec["case"]
    if case != "none":
        fields = {"holdout": case == "holdout", "awaiting_return": case == "awaiting",
                  "callback_at": BASE + dt.timedelta(days=1) if case == "callback" else None}
        if case == "claimed":
            fields |= {"claimed_by": UserFactory(), "lease_until": BASE + dt.timedelta(days=30)}
        WinbackCase.objects.create(customer=customer, lapsed_at=BASE - dt.timedelta(days=5), opened_at=BASE - dt.timedelta(days=5), **fields)
    for hours in spec["recent_contacts"]:
        ContactFactory(customer=customer, channel="call", direction="outbound", occurred_at=BASE - dt.timedelta(hours=hours))
    return customer


def allowed(tp: Touchpoint, at: dt.datetime) -> bool:
    """The rules, read straight from the database at the instant ``at``."""
    customer = tp.customer
    customer.refresh_from_db()
    cadence, step = tp.step.cadence, tp.step
    if not customer.email:
        return False
    cases = WinbackCase.objects.filter(customer=customer, status="open", kind="winback")
    if cadence.marketing:
        if customer.email_consent not in ("granted", "relationship") or cases.filter(holdout=True).exists():
            return False
    if cadence.trigger == "lapsed":
        if customer.status not in ("lapsed", "cancelled"):
            return False
        if cases.filter(awaiting_return=True).exists() or cases.filter(callback_at__isnull=False).exists() \
                or cases.filter(claimed_by__isnull=False, lease_until__gt=at).exists():
            return False
    if cadence.trigger == "at_risk" and customer.status != "at_risk":
        return False
    if (step.offer_id or cadence.trigger == "lapsed") and Complaint.objects.filter(customer=customer).exclude(status="resolved").exists():
        return False
    local = at.astimezone(zoneinfo.ZoneInfo(customer.timezone)).time()
    if local >= dt.time(21) or local < dt.time(8):
        return False
    if cadence.marketing:
        # (No upper bound: a message sent at this instant is stamped a few milliseconds after it.)
        week = Contact.objects.filter(customer=customer, direction="outbound", occurred_at__gte=at - dt.timedelta(days=7),
                                      ).exclude(touchpoint__step__cadence__marketing=False)
        if week.count() >= 2:
            return False
    return True


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(people=st.lists(st.tuples(customers, st.lists(touchpoint_specs, min_size=1, max_size=4)), min_size=1, max_size=4))
def test_nothing_is_ever_sent_outside_the_rules(people, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mail.outbox = []
    offer = Offer.objects.get(code_prefix="BACK10")
    steps = {kind: make_step(trigger=trigger, marketing=marketing, template=template, offer=offer if with_offer else None)
             for kind, (trigger, marketing, template, with_offer) in KINDS.items()}
    plan = []
    for spec, tps in people:
        customer = build(spec)
        for t in tps:
            due = BASE + dt.timedelta(hours=t["due_hours"])
            tp = make_touchpoint(customer, steps[t["kind"]], due_at=due)
            plan.append((due + dt.timedelta(minutes=t["send_delay_minutes"]), tp))
    # Send everything in time order; deferred ones are tried again when they come due
    for _ in range(4):
        for at, tp in sorted(plan, key=lambda p: p[0]):
            tp.refresh_from_db()
            if tp.status != "scheduled":
                continue
            at = max(at, tp.due_at)
            verdict = allowed(tp, at)
            outcome = touchpoint_send(touchpoint_id=tp.pk, now=at)
            tp.refresh_from_db()
            if outcome == "sent":
                assert verdict, f"sent against the rules: {tp} at {at}"
            elif outcome in ("suppressed", "cancelled", "deferred"):
                assert tp.reason, f"{outcome} without a reason: {tp}"
                assert not verdict or outcome == "cancelled" and tp.reason == "expired", f"{outcome} ({tp.reason}) though allowed: {tp} at {at}"
    sent = Touchpoint.objects.filter(pk__in=[tp.pk for _, tp in plan], status="sent")
    # One email per sent touchpoint, and none for any other
    assert sorted(m.extra_headers["X-Touchpoint"] for m in mail.outbox) == sorted(str(t.pk) for t in sent)
