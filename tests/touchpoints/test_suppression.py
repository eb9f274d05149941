"""Each send-time rule stops a touchpoint, with its reason recorded (touchpoints/services/rules.py)."""

import datetime as dt

import pytest

from crm.models import Complaint, Contact
from tests.factories import ComplaintFactory, ContactFactory, WinbackCaseFactory
from tests.touchpoints.conftest import NOW, make_customer, make_step, make_touchpoint
from touchpoints.models import Touchpoint, TouchpointSettings
from touchpoints.services.rules import quiet_hours_end
from touchpoints.services.sending import touchpoint_send
from winback.models import Offer, WinbackCase

pytestmark = pytest.mark.django_db


def with_status(customer, status):
    customer.status = status
    customer.save(update_fields=["status"])
    return customer


def open_case(customer, **fields):
    return WinbackCaseFactory(customer=customer, lapsed_at=NOW - dt.timedelta(days=3),
                              ready=not fields.get("holdout", False), **fields)


def send_and_reload(tp, now=NOW):
    outcome = touchpoint_send(touchpoint_id=tp.pk, now=now)
    tp.refresh_from_db()
    return outcome


@pytest.mark.parametrize("consent, reason", [("withdrawn", "opted_out"), ("unknown", "no_consent")])
def test_marketing_without_consent_or_after_an_opt_out_is_suppressed(smtp, consent, reason):
    tp = make_touchpoint(with_status(make_customer(email_consent=consent), "at_risk"))
    assert send_and_reload(tp) == "suppressed"
    assert (tp.status, tp.reason) == ("suppressed", reason)
    assert smtp.messages == []


def test_an_existing_relationship_is_a_lawful_basis(smtp):
    tp = make_touchpoint(with_status(make_customer(email_consent="relationship"), "at_risk"))
    assert send_and_reload(tp) == "sent"


def test_no_email_address_is_suppressed(smtp):
    tp = make_touchpoint(with_status(make_customer(email=""), "at_risk"))
    assert send_and_reload(tp) == "suppressed" and tp.reason == "no_email"


def test_a_customer_in_the_holdout_gets_no_win_back(smtp):
    customer = with_status(make_customer(), "lapsed")
    open_case(customer, holdout=True)
    tp = make_touchpoint(customer, make_step(trigger="lapsed", template="winback_miss_you"))
    assert send_and_reload(tp) == "suppressed" and tp.reason == "holdout"
    assert smtp.messages == []


@pytest.mark.parametrize("being_worked", [
    {"claimed": True}, {"callback_at": NOW + dt.timedelta(hours=2)}, {"awaiting_return": True},
])
def test_no_win_back_email_while_an_agent_works_the_case(smtp, agent, being_worked):
    customer = with_status(make_customer(), "lapsed")
    fields = {k: v for k, v in being_worked.items() if k != "claimed"}
    if being_worked.get("claimed"):
        fields |= {"claimed_by": agent, "lease_until": NOW + dt.timedelta(minutes=10)}
    open_case(customer, **fields)
    tp = make_touchpoint(customer, make_step(trigger="lapsed", template="winback_miss_you"))
    assert send_and_reload(tp) == "suppressed" and tp.reason == "case_in_progress"


def test_an_open_complaint_stops_a_discount_email_and_routes_to_a_recovery_call(smtp):
    # Given a lapsed customer with an open (not yet worked) case and an open complaint
    customer = with_status(make_customer(), "lapsed")
    case = open_case(customer, revenue_12m=100)
    ComplaintFactory(customer=customer, status=Complaint.Status.OPEN)
    offer = Offer.objects.get(code_prefix="BACK10")
    tp = make_touchpoint(customer, make_step(trigger="lapsed", template="winback_offer", offer=offer))
    # When the offer email comes due
    assert send_and_reload(tp) == "suppressed"
    # Then no email and no coupon; the case becomes a recovery call at the top of the queue
    assert tp.reason == "open_complaint" and tp.coupon is None and smtp.messages == []
    case.refresh_from_db()
    assert case.is_recovery and case.priority == 200 and case.ready


def test_an_open_complaint_without_a_case_opens_a_care_call(smtp):
    customer = with_status(make_customer(phone="+33612345678"), "at_risk")
    ComplaintFactory(customer=customer, status=Complaint.Status.IN_PROGRESS)
    offer = Offer.objects.get(code_prefix="BACK10")
    tp = make_touchpoint(customer, make_step(trigger="at_risk", template="appreciation", offer=offer))
    assert send_and_reload(tp) == "suppressed" and tp.reason == "open_complaint"
    care = WinbackCase.objects.get(customer=customer)
    assert (care.kind, care.status, care.is_recovery, care.holdout) == ("care", "open", True, False)


def test_a_resolved_complaint_does_not_stop_an_offer(smtp):
    customer = with_status(make_customer(), "lapsed")
    ComplaintFactory(customer=customer, status=Complaint.Status.RESOLVED, resolved_at=NOW - dt.timedelta(days=1))
    offer = Offer.objects.get(code_prefix="BACK10")
    tp = make_touchpoint(customer, make_step(trigger="lapsed", template="winback_offer", offer=offer))
    assert send_and_reload(tp) == "sent"


def test_the_frequency_cap_counts_every_channel_and_suppresses_the_third_touch(smtp):
    # Given a customer who got one email and one agent call this week
    customer = with_status(make_customer(), "at_risk")
    ContactFactory(customer=customer, channel="email", direction="outbound", occurred_at=NOW - dt.timedelta(days=2))
    ContactFactory(customer=customer, channel="call", direction="outbound", occurred_at=NOW - dt.timedelta(days=6))
    # and an inbound contact and an old one, which do not count
    ContactFactory(customer=customer, channel="email", direction="inbound", occurred_at=NOW - dt.timedelta(days=1))
    ContactFactory(customer=customer, channel="call", direction="outbound", occurred_at=NOW - dt.timedelta(days=8))
    tp = make_touchpoint(customer)
    # When a third marketing touch comes due
    assert send_and_reload(tp) == "suppressed"
    assert tp.reason == "frequency_cap" and smtp.messages == []


def test_the_cap_is_a_setting_and_the_transactional_thank_you_is_exempt(smtp):
    customer = with_status(make_customer(), "at_risk")
    for days in (1, 2):
        ContactFactory(customer=customer, channel="email", direction="outbound", occurred_at=NOW - dt.timedelta(days=days))
    thank_you = make_touchpoint(customer, make_step(trigger="order", marketing=False, template="thank_you"))
    assert send_and_reload(thank_you) == "sent"
    # The thank-you did not use up the allowance: raise the cap to 3 and a marketing touch goes out
    TouchpointSettings.objects.update_or_create(pk=1, defaults={"cap_count": 3})
    from touchpoints.services.sending import touchpoint_limits
    touchpoint_limits(fresh=True)
    assert send_and_reload(make_touchpoint(customer)) == "sent"
    # Not exempt any more: the thank-you counts too, and the next touch is over the cap
    TouchpointSettings.objects.filter(pk=1).update(transactional_exempt=False)
    touchpoint_limits(fresh=True)
    nxt = make_touchpoint(customer, make_step(trigger="order", marketing=False, template="thank_you"))
    assert send_and_reload(nxt) == "suppressed" and nxt.reason == "frequency_cap"


def test_quiet_hours_defer_to_eight_in_the_customers_own_time_zone(smtp):
    # Given a customer in Tokyo: 12:00 UTC is 21:00 there, inside quiet hours (21:00-08:00)
    customer = with_status(make_customer(timezone="Asia/Tokyo"), "at_risk")
    tp = make_touchpoint(customer)
    # When it comes due
    assert send_and_reload(tp) == "deferred"
    # Then it waits, with the reason, until 08:00 Tokyo time (23:00 UTC), and was not counted as an attempt
    assert (tp.status, tp.reason, tp.attempts) == ("scheduled", "quiet_hours", 0)
    assert tp.due_at == dt.datetime(2026, 3, 10, 23, 0, tzinfo=dt.timezone.utc)
    assert smtp.messages == []
    assert send_and_reload(tp, now=tp.due_at) == "sent"


def test_quiet_hours_hold_in_every_zone_a_phone_number_may_be_in():
    # A US number without a zone: every US zone must be outside quiet hours
    zones = "America/New_York,America/Los_Angeles"
    # 14:30 UTC: 09:30 in New York but 06:30 in Los Angeles: still quiet there, until 08:00 LA time
    at = dt.datetime(2026, 6, 1, 13, 30, tzinfo=dt.timezone.utc)
    assert quiet_hours_end(call_zones=zones, now=at, start=dt.time(21), end=dt.time(8)) == dt.datetime(2026, 6, 1, 15, 0, tzinfo=dt.timezone.utc)
    # 16:00 UTC: daytime in both
    assert quiet_hours_end(call_zones=zones, now=dt.datetime(2026, 6, 1, 16, tzinfo=dt.timezone.utc), start=dt.time(21), end=dt.time(8)) is None


def test_quiet_hours_across_a_dst_change():
    # Paris, the night clocks go forward (29 March 2026): 22:00 local on the 28th is quiet until 08:00 CEST
    at = dt.datetime(2026, 3, 28, 21, 0, tzinfo=dt.timezone.utc)
    assert quiet_hours_end(call_zones="Europe/Paris", now=at, start=dt.time(21), end=dt.time(8)) == dt.datetime(2026, 3, 29, 6, 0, tzinfo=dt.timezone.utc)


def test_an_at_risk_message_is_cancelled_once_the_customer_orders_again(smtp):
    customer = with_status(make_customer(), "active")
    tp = make_touchpoint(customer)
    assert send_and_reload(tp) == "cancelled" and tp.reason == "no_longer_applies"


def test_a_touchpoint_far_past_its_time_expires(smtp):
    customer = with_status(make_customer(), "at_risk")
    tp = make_touchpoint(customer, due_at=NOW - dt.timedelta(hours=49))
    assert send_and_reload(tp) == "cancelled" and tp.reason == "expired"


def test_a_disabled_cadence_sends_nothing(smtp):
    customer = with_status(make_customer(), "at_risk")
    tp = make_touchpoint(customer)
    tp.step.cadence.enabled = False
    tp.step.cadence.save()
    assert send_and_reload(tp) == "cancelled" and tp.reason == "disabled"


def test_an_nps_detractor_call_step_opens_a_care_call_in_the_queue(smtp):
    customer = with_status(make_customer(phone="+33612345678"), "active")
    step = make_step(trigger="nps_detractor", marketing=False, template="", channel="call")
    tp = make_touchpoint(customer, step)
    assert send_and_reload(tp) == "sent"
    assert tp.case.kind == "care" and tp.case.ready and tp.case.is_recovery
    assert smtp.messages == [] and not Contact.objects.filter(customer=customer).exists()
    # A second detractor answer while the care call is open reuses it
    again = make_touchpoint(customer, step)
    assert send_and_reload(again) == "sent" and again.case_id == tp.case_id


def test_a_call_step_for_a_customer_with_an_open_win_back_case_moves_that_case_up(smtp):
    customer = with_status(make_customer(phone="+33612345678"), "lapsed")
    case = open_case(customer, revenue_12m=50)
    tp = make_touchpoint(customer, make_step(trigger="nps_detractor", marketing=False, template="", channel="call"))
    assert send_and_reload(tp) == "sent" and tp.case_id == case.pk
    case.refresh_from_db()
    assert case.is_recovery and case.priority == 100
    assert WinbackCase.objects.filter(customer=customer).count() == 1


@pytest.mark.parametrize("fields, reason", [({"phone": ""}, "no_phone"), ({"do_not_call": True}, "do_not_call")])
def test_a_call_step_respects_missing_phones_and_do_not_call(smtp, fields, reason):
    customer = with_status(make_customer(phone="+33612345678"), "active")
    from crm.services.audit import SYSTEM
    from crm.services.customers import customer_update
    customer_update(actor=SYSTEM, customer=customer, data=fields)
    tp = make_touchpoint(customer, make_step(trigger="nps_detractor", marketing=False, template="", channel="call"))
    assert send_and_reload(tp) == "suppressed" and tp.reason == reason
    assert not WinbackCase.objects.filter(customer=customer).exists()
