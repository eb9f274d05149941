"""The agent desk (issue 15): the coupon shown before saving, "put back" then "next", the hold's countdown,
the queue depth and the agent's day, the call guide chosen by the case, callback presets inside calling
hours, and the focus on the field a save refused. Services and selectors on a fixed clock; the page on the
real one."""

import datetime as dt
import re
import zoneinfo

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django.utils import timezone
from django.utils.html import strip_tags

from crm.models import Complaint
from crm.services.audit import SYSTEM
from crm.services.customers import customer_update
from metrics.sql import PROGRAM_COUPONS
from tests.factories import (
    ComplaintFactory, ContactFactory, FeedbackFactory, OfferFactory, UserFactory, WinbackCaseFactory,
)
from tests.winback.bounds import assert_refused
from tests.winback.test_queue import NOON_PARIS, open_case
from tests.winback.test_queue_access import case_now
from winback.forms import DispositionForm
from winback.models import CallSettings, CaseEvent, Coupon, CouponReservation, Disposition, WinbackCase
from winback.selectors import (
    CALL_GUIDE, CARE_GUIDE, RECOVERY_GUIDE, agent_today, call_guide, customer_language, queue_depth,
)
from winback.services.calling_hours import callback_presets, inside_calling_hours, next_calling_time
from winback.services.queue import (
    DispositionInput, NotYourCase, call_settings, case_claim_next, case_put_back, case_record_disposition,
    coupon_reserve,
)

pytestmark = pytest.mark.django_db
PARIS = zoneinfo.ZoneInfo("Europe/Paris")
EIGHT, NINE_PM = dt.time(8, 0), dt.time(21, 0)


@pytest.fixture
def agents():
    return [UserFactory(username=f"desk{i}") for i in range(2)]


def coupons_counted(start: dt.datetime, end: dt.datetime) -> int:
    """What the program KPIs count as coupons issued in [start, end) (metrics/sql.py)."""
    with connection.cursor() as cur:
        cur.execute(PROGRAM_COUPONS, {"s": connection.ops.adapt_datetimefield_value(start),
                                      "e": connection.ops.adapt_datetimefield_value(end)})
        return int(cur.fetchone()[0] or 0)


# --- 1. The coupon before saving ------------------------------------------------------------------------------

def test_choosing_an_offer_reserves_one_code_that_is_not_yet_a_coupon(agents):
    # Given an agent holding a case and two offers
    case = open_case(priority=10)
    first_offer, second_offer = OfferFactory(code_prefix="TEN"), OfferFactory(code_prefix="FREE")
    assert case_claim_next(agent=agents[0], now=NOON_PARIS) == case
    # When they choose an offer, then the same one again
    chosen = coupon_reserve(agent=agents[0], case_id=case.pk, offer_id=first_offer.pk, now=NOON_PARIS)
    again = coupon_reserve(agent=agents[0], case_id=case.pk, offer_id=first_offer.pk,
                           now=NOON_PARIS + dt.timedelta(seconds=20))
    # Then the code is the same, of that offer, and nothing counts as a coupon issued
    assert re.fullmatch(r"TEN-[A-Z2-9]{8}", chosen.code)
    assert again.pk == chosen.pk and again.code == chosen.code
    assert Coupon.objects.count() == 0
    assert coupons_counted(NOON_PARIS - dt.timedelta(days=1), NOON_PARIS + dt.timedelta(days=1)) == 0
    # When they change their mind: the earlier code is gone, one reservation is live
    other = coupon_reserve(agent=agents[0], case_id=case.pk, offer_id=second_offer.pk, now=NOON_PARIS)
    assert other.code.startswith("FREE-") and other.code != chosen.code
    assert list(CouponReservation.objects.values_list("code", flat=True)) == [other.code]
    # And "no offer" drops it
    assert coupon_reserve(agent=agents[0], case_id=case.pk, offer_id=None, now=NOON_PARIS) is None
    assert not CouponReservation.objects.exists()


def test_saving_the_call_issues_the_reserved_code_and_never_a_second_coupon(agents):
    # Given a code shown to the agent for an offer
    case, _next = open_case(priority=10), open_case(priority=5)
    offer = OfferFactory(code_prefix="BACK", valid_days=30)
    case_claim_next(agent=agents[0], now=NOON_PARIS)
    shown = coupon_reserve(agent=agents[0], case_id=case.pk, offer_id=offer.pk, now=NOON_PARIS)
    # When the call is saved with that offer
    saved_at = NOON_PARIS + dt.timedelta(minutes=3)
    disposition = case_record_disposition(agent=agents[0], case_id=case.pk, now=saved_at,
                                          data=DispositionInput(outcome="reached_will_return", offer_id=offer.pk))
    # Then its coupon has the very code shown, issued at the save, and it is the only coupon
    assert disposition.coupon.code == shown.code
    assert Coupon.objects.count() == 1
    assert disposition.coupon.issued_at == saved_at
    assert disposition.coupon.expires_at == saved_at + dt.timedelta(days=30)
    assert disposition.coupon.case_id == case.pk and disposition.coupon.customer_id == case.customer_id
    assert not CouponReservation.objects.exists()
    assert coupons_counted(NOON_PARIS, NOON_PARIS + dt.timedelta(hours=1)) == 1


def test_saving_with_another_offer_than_the_one_shown_issues_a_fresh_code_and_drops_the_shown_one(agents):
    case = open_case(priority=10)
    shown_offer, saved_offer = OfferFactory(code_prefix="TEN"), OfferFactory(code_prefix="FREE")
    case_claim_next(agent=agents[0], now=NOON_PARIS)
    shown = coupon_reserve(agent=agents[0], case_id=case.pk, offer_id=shown_offer.pk, now=NOON_PARIS)
    disposition = case_record_disposition(agent=agents[0], case_id=case.pk, now=NOON_PARIS,
                                          data=DispositionInput(outcome="reached_declined", offer_id=saved_offer.pk))
    assert disposition.coupon.code.startswith("FREE-") and disposition.coupon.code != shown.code
    assert Coupon.objects.count() == 1 and not CouponReservation.objects.exists()


def test_saving_without_an_offer_issues_nothing_and_drops_the_shown_code(agents):
    case = open_case(priority=10)
    case_claim_next(agent=agents[0], now=NOON_PARIS)
    coupon_reserve(agent=agents[0], case_id=case.pk, offer_id=OfferFactory().pk, now=NOON_PARIS)
    disposition = case_record_disposition(agent=agents[0], case_id=case.pk, now=NOON_PARIS,
                                          data=DispositionInput(outcome="busy"))
    assert disposition.coupon is None
    assert not Coupon.objects.exists() and not CouponReservation.objects.exists()


def test_a_code_shown_on_a_case_put_back_is_dropped_and_never_counted(agents):
    case = open_case(priority=10)
    case_claim_next(agent=agents[0], now=NOON_PARIS)
    coupon_reserve(agent=agents[0], case_id=case.pk, offer_id=OfferFactory().pk, now=NOON_PARIS)
    case_put_back(agent=agents[0], case_id=case.pk, now=NOON_PARIS + dt.timedelta(minutes=1))
    assert not CouponReservation.objects.exists() and not Coupon.objects.exists()


def test_only_the_holder_may_reserve_and_a_holdout_or_inactive_offer_is_refused(agents):
    case = open_case(priority=10)
    offer = OfferFactory()
    case_claim_next(agent=agents[0], now=NOON_PARIS)
    with pytest.raises(NotYourCase):
        coupon_reserve(agent=agents[1], case_id=case.pk, offer_id=offer.pk, now=NOON_PARIS)
    inactive = OfferFactory(active=False)
    with pytest.raises(ValidationError) as refused:
        coupon_reserve(agent=agents[0], case_id=case.pk, offer_id=inactive.pk, now=NOON_PARIS)
    assert "offer" in refused.value.message_dict
    WinbackCase.objects.filter(pk=case.pk).update(holdout=True)
    with pytest.raises(ValidationError):
        coupon_reserve(agent=agents[0], case_id=case.pk, offer_id=offer.pk, now=NOON_PARIS)
    assert not CouponReservation.objects.exists()


def test_a_code_left_by_an_agent_whose_hold_ran_out_is_replaced_for_the_next_holder(agents):
    case = open_case(priority=10)
    offer = OfferFactory()
    case_claim_next(agent=agents[0], now=NOON_PARIS)
    left = coupon_reserve(agent=agents[0], case_id=case.pk, offer_id=offer.pk, now=NOON_PARIS)
    # The lease runs out (15 minutes) and the other agent takes the case
    later = NOON_PARIS + dt.timedelta(minutes=20)
    case_claim_next(agent=agents[1], now=later)  # wakes it
    assert case_claim_next(agent=agents[1], now=later + dt.timedelta(seconds=1)) == case
    mine = coupon_reserve(agent=agents[1], case_id=case.pk, offer_id=offer.pk, now=later)
    assert mine.code != left.code and CouponReservation.objects.get().agent == agents[1]
    disposition = case_record_disposition(agent=agents[1], case_id=case.pk, now=later,
                                          data=DispositionInput(outcome="reached_will_return", offer_id=offer.pk))
    assert disposition.coupon.code == mine.code


def test_the_coupon_route_answers_the_holder_only(agent):
    # Given an agent holding a case (on the real clock) and another agent
    case = case_now(10)
    assert case_claim_next(agent=agent) == case
    offer = OfferFactory(code_prefix="WEB", valid_days=14)
    url = f"/agent/case/{case.pk}/coupon/"
    holder = Client()
    holder.force_login(agent)
    # When the holder chooses the offer, twice
    first = holder.post(url, {"offer": offer.pk})
    second = holder.post(url, {"offer": offer.pk})
    # Then the same code both times, and the words to read out
    assert first.status_code == 200 and first.json()["code"] == second.json()["code"]
    assert first.json()["code"].startswith("WEB-") and "valid until" in first.json()["text"]
    # A bad offer is a 400 with a reason, and changes nothing
    assert holder.post(url, {"offer": "abc"}).status_code == 400
    refused = holder.post(url, {"offer": OfferFactory(active=False).pk})
    assert refused.status_code == 400 and "No active offer" in refused.json()["error"]
    assert CouponReservation.objects.get().code == first.json()["code"]
    # GET is not a way in
    assert holder.get(url).status_code == 405


def test_the_coupon_route_is_a_404_for_anyone_but_the_holder(agent):
    case = case_now(10)
    case_claim_next(agent=agent)
    somebody = UserFactory(username="somebody-else")
    somebody.groups.add(Group.objects.get(name="Agents"))
    client = Client()
    client.force_login(somebody)
    assert client.post(f"/agent/case/{case.pk}/coupon/", {"offer": OfferFactory().pk}).status_code == 404
    assert not CouponReservation.objects.exists()


def test_the_page_shows_a_code_already_chosen_after_a_refused_save(agent):
    case = case_now(10)
    case_claim_next(agent=agent)
    offer = OfferFactory(code_prefix="AGAIN")
    client = Client()
    client.force_login(agent)
    code = client.post(f"/agent/case/{case.pk}/coupon/", {"offer": offer.pk}).json()["code"]
    # A callback without its time is refused: the page comes back with the code still on it
    page = client.post(f"/agent/case/{case.pk}/", {"outcome": "callback_requested", "offer": offer.pk}).content.decode()
    assert code in page and 'aria-live="polite"' in page
    assert not Coupon.objects.exists()


# --- 2. Put back, then next ------------------------------------------------------------------------------------

def test_a_case_put_back_comes_after_the_others_then_after_its_time_in_its_place(agents):
    # Given two callable cases; the agent takes the first and puts it back
    top, other = open_case(priority=500), open_case(priority=10)
    CallSettings.objects.filter(pk=1).update(skip_minutes=30)
    a = agents[0]
    assert case_claim_next(agent=a, now=NOON_PARIS) == top
    case_put_back(agent=a, case_id=top.pk, now=NOON_PARIS)
    # When they ask for the next customer: someone else
    assert case_claim_next(agent=a, now=NOON_PARIS + dt.timedelta(seconds=5)) == other
    # And the put-back left its event, with who and why
    event = CaseEvent.objects.filter(case=top, kind="released").get()
    assert event.agent == a and event.actor == "agent" and event.reason == "Put back in the queue."
    top.refresh_from_db()
    assert top.ready and top.claimed_by is None
    assert top.skipped_until == NOON_PARIS + dt.timedelta(minutes=30)


def test_a_case_put_back_is_the_last_resort_and_its_place_returns_after_the_set_time(agents):
    top, other = open_case(priority=500), open_case(priority=10)
    CallSettings.objects.filter(pk=1).update(skip_minutes=30)
    a, b = agents
    case_claim_next(agent=a, now=NOON_PARIS)
    case_put_back(agent=a, case_id=top.pk, now=NOON_PARIS)
    # Nobody else callable: the case put back is still given rather than nothing
    assert case_claim_next(agent=b, now=NOON_PARIS + dt.timedelta(seconds=1)) == other
    assert case_claim_next(agent=a, now=NOON_PARIS + dt.timedelta(seconds=2)) == top
    top.refresh_from_db()
    assert top.skipped_until is None  # the claim clears it
    # Put back again; after the set time it is first in its place again
    case_put_back(agent=a, case_id=top.pk, now=NOON_PARIS + dt.timedelta(minutes=1))
    case_put_back(agent=b, case_id=other.pk, now=NOON_PARIS + dt.timedelta(minutes=1))
    WinbackCase.objects.filter(pk=other.pk).update(skipped_until=None)
    assert case_claim_next(agent=a, now=NOON_PARIS + dt.timedelta(minutes=2)) == other
    case_put_back(agent=a, case_id=other.pk, now=NOON_PARIS + dt.timedelta(minutes=2))
    WinbackCase.objects.filter(pk=other.pk).update(skipped_until=None)
    assert case_claim_next(agent=a, now=NOON_PARIS + dt.timedelta(minutes=32)) == top


def test_cases_put_back_come_back_in_the_order_they_were_put_back(agents):
    first, second = open_case(priority=10), open_case(priority=500)
    a = agents[0]
    for case, minute in ((second, 0), (first, 1)):
        assert case_claim_next(agent=a, now=NOON_PARIS + dt.timedelta(minutes=minute)) == case
        case_put_back(agent=a, case_id=case.pk, now=NOON_PARIS + dt.timedelta(minutes=minute))
    assert case_claim_next(agent=a, now=NOON_PARIS + dt.timedelta(minutes=2)) == second


def test_the_release_route_puts_the_case_back(agent):
    top, other = case_now(500), case_now(10)
    client = Client()
    client.force_login(agent)
    assert client.post("/agent/next/").url == f"/agent/case/{top.pk}/"
    assert client.post(f"/agent/case/{top.pk}/release/").url == "/agent/"
    assert client.post("/agent/next/").url == f"/agent/case/{other.pk}/"
    assert CaseEvent.objects.filter(case=top, kind="released", reason="Put back in the queue.").exists()


def test_skip_minutes_are_bounded_in_the_model_and_the_database():
    calls = call_settings(fresh=True)
    calls.skip_minutes = 0
    assert_refused(calls, "skip_minutes")
    calls.skip_minutes = 24 * 60 + 1
    assert_refused(calls, "skip_minutes")


# --- 3. The hold, the queue, the agent's day --------------------------------------------------------------------

def test_queue_depth_counts_who_is_callable_now(agents):
    rules = call_settings(fresh=True)
    callable_now = [open_case(priority=p) for p in (1, 2, 3)]
    open_case(priority=4, holdout=True, ready=False)
    open_case(priority=5, tz="America/Los_Angeles")  # 03:00 there
    open_case(priority=6, phone="")
    waiting = open_case(priority=7, ready=False, next_call_at=NOON_PARIS + dt.timedelta(hours=1))
    gap_over = open_case(priority=8, ready=False, next_call_at=NOON_PARIS - dt.timedelta(minutes=1))
    no_call = open_case(priority=9)
    customer_update(actor=SYSTEM, customer=no_call.customer, data={"do_not_call": True})
    assert queue_depth(rules=rules, now=NOON_PARIS) == len(callable_now) + 1  # and gap_over
    # A case an agent holds is not callable; the one still waiting for its time never was
    held = case_claim_next(agent=agents[0], now=NOON_PARIS)
    assert held in [*callable_now, gap_over] and held != waiting
    assert queue_depth(rules=rules, now=NOON_PARIS) == len(callable_now)


def test_the_agents_day_counts_their_own_calls_of_today(agents):
    a, b = agents
    now = dt.datetime(2025, 3, 12, 15, 0, tzinfo=dt.timezone.utc)
    offer = OfferFactory()
    cases = [open_case(priority=p) for p in (50, 40, 30, 20)]
    tomorrow = now.astimezone(PARIS).replace(hour=12, minute=0) + dt.timedelta(days=1)
    inputs = [DispositionInput(outcome="callback_requested", callback_local=tomorrow.replace(tzinfo=None)),
              DispositionInput(outcome="reached_will_return", offer_id=offer.pk),
              DispositionInput(outcome="no_answer")]
    for data in inputs:
        case = case_claim_next(agent=a, now=now)
        case_record_disposition(agent=a, case_id=case.pk, data=data, now=now)
    won = Disposition.objects.get(outcome="reached_will_return").case
    WinbackCase.objects.filter(pk=won.pk).update(status="won", closed_at=now)
    CaseEvent.objects.create(case=won, kind="closed", at=now, from_status="open", to_status="won",
                             actor="lifecycle scan", is_recovery=False)
    # Someone else's call and yesterday's call do not count
    case = case_claim_next(agent=b, now=now)
    case_record_disposition(agent=b, case_id=case.pk, data=DispositionInput(outcome="busy"), now=now)
    Disposition.objects.create(case=cases[0], agent=a, contact=ContactFactory(customer=cases[0].customer),
                               outcome="busy", created_at=now - dt.timedelta(days=1))
    assert agent_today(agent=a, now=now) == {"calls": 3, "reached": 2, "callbacks": 1, "coupons": 1, "won": 1}
    assert agent_today(agent=b, now=now) == {"calls": 1, "reached": 0, "callbacks": 0, "coupons": 0, "won": 0}


def test_the_case_page_carries_the_hold_the_timer_the_queue_and_the_day(agent):
    case = case_now(10)
    case_now(5)
    client = Client()
    client.force_login(agent)
    client.post("/agent/next/")
    case.refresh_from_db()
    page = client.get(f"/agent/case/{case.pk}/").content.decode()
    assert f'data-lease-until="{int(case.lease_until.timestamp())}"' in page
    claimed = CaseEvent.objects.get(case=case, kind="claimed")
    assert f'data-claimed-at="{int(claimed.at.timestamp())}"' in page
    assert re.search(r'id="queue-depth">[^<]*<strong dir="ltr">1</strong>', page)  # the other case
    assert 'id="today-calls">0<' in page and "How these are computed" in page
    assert 'id="hold-status"' in page and "ran out" in page


# --- 4. The call guide ----------------------------------------------------------------------------------------

def test_a_plain_winback_call_keeps_the_guide():
    case = WinbackCaseFactory()
    guide = call_guide(case=case, open_complaints=[], now=timezone.now())
    assert guide == {"kind": "winback", "why": [], "steps": CALL_GUIDE}


def test_a_recovery_call_opens_with_the_open_complaint():
    case = WinbackCaseFactory(is_recovery=True)
    complaint = ComplaintFactory(customer=case.customer, category=Complaint.Category.DELIVERY,
                                 summary="Parcel arrived broken twice")
    guide = call_guide(case=case, open_complaints=[complaint], now=timezone.now())
    assert guide["kind"] == "recovery" and guide["steps"] == RECOVERY_GUIDE
    assert "Delivery" in guide["why"][0] and "Parcel arrived broken twice" in guide["why"][0]


def test_a_care_call_says_which_low_score_or_complaint_brought_it():
    now = timezone.now()
    case = WinbackCaseFactory(kind="care", is_recovery=True, lapsed_at=now, opened_at=now)
    FeedbackFactory(customer=case.customer, kind="nps", score=9, responded_at=now - dt.timedelta(days=1))
    FeedbackFactory(customer=case.customer, kind="nps", score=3, comment="Slow support",
                    responded_at=now - dt.timedelta(days=2))
    guide = call_guide(case=case, open_complaints=[], now=now)
    assert guide["kind"] == "care" and guide["steps"] == CARE_GUIDE
    # (the guide's lines are HTML: their data is isolated in <bdi> for right-to-left pages)
    assert strip_tags(guide["why"][0]).startswith("Low NPS score: 3 on ") and "Slow support" in guide["why"][0]
    complaint = ComplaintFactory(customer=case.customer, category=Complaint.Category.BILLING, summary="Charged twice")
    guide = call_guide(case=case, open_complaints=[complaint], now=now)
    assert len(guide["why"]) == 2 and "Charged twice" in guide["why"][1]


def test_the_card_names_the_customers_language_and_opens_a_recovery_call_with_the_complaint(agent):
    case = case_now(10)
    customer_update(actor=SYSTEM, customer=case.customer, data={"locale": "hu"})
    ComplaintFactory(customer=case.customer, category=Complaint.Category.PRODUCT, summary="The kettle leaks")
    WinbackCase.objects.filter(pk=case.pk).update(is_recovery=True)
    case_claim_next(agent=agent)
    client = Client()
    client.force_login(agent)
    page = client.get(f"/agent/case/{case.pk}/").content.decode()
    assert re.search(r'id="language">[^<]*<strong lang="hu">Hungarian \(Magyar\)</strong>', page)
    assert "Open with the complaint" in page and "The kettle leaks" in page
    assert customer_language(locale="xx-unknown") == "xx-unknown"


# --- 5. Callback presets and the focus on a refused field ---------------------------------------------------------

@pytest.mark.parametrize("local_now, expected", [
    # mid-day: in an hour, tomorrow 09:00, same time tomorrow
    ("12:02", {"in_an_hour": "2025-03-12 13:05", "tomorrow_morning": "2025-03-13 09:00",
               "same_time_tomorrow": "2025-03-13 12:02"}),
    # late: an hour later is past 21:00, so the next morning's start; same time tomorrow too
    ("20:30", {"in_an_hour": "2025-03-13 08:00", "tomorrow_morning": "2025-03-13 09:00",
               "same_time_tomorrow": "2025-03-13 20:30"}),
    # early: before calling hours, the same time tomorrow moves to 08:00
    ("06:15", {"in_an_hour": "2025-03-12 08:00", "tomorrow_morning": "2025-03-13 09:00",
               "same_time_tomorrow": "2025-03-13 08:00"}),
])
def test_callback_presets_fall_inside_calling_hours(local_now, expected):
    hour, minute = map(int, local_now.split(":"))
    now = dt.datetime(2025, 3, 12, hour, minute, 30, tzinfo=PARIS)
    presets = callback_presets(call_zones="Europe/Paris", now=now, start=EIGHT, end=NINE_PM)
    assert {k: f"{v:%Y-%m-%d %H:%M}" for k, v in presets.items()} == expected
    for local in presets.values():
        instant = local.replace(tzinfo=PARIS)
        assert instant > now and inside_calling_hours(call_zones="Europe/Paris", now=instant, start=EIGHT, end=NINE_PM)


def test_a_late_calling_start_makes_tomorrow_morning_its_start_and_several_zones_share_hours():
    now = dt.datetime(2025, 3, 12, 12, 0, tzinfo=PARIS)
    presets = callback_presets(call_zones="Europe/Paris", now=now, start=dt.time(10, 30), end=NINE_PM)
    assert f"{presets['tomorrow_morning']:%H:%M}" == "10:30"
    # Paris and New York: 08:00 in Paris is 03:00 in New York; the first shared minute is 14:00 Paris
    at = next_calling_time(call_zones="Europe/Paris,America/New_York", at=dt.datetime(2025, 3, 12, 22, 0, tzinfo=PARIS),
                           start=EIGHT, end=NINE_PM)
    assert at.astimezone(PARIS) == dt.datetime(2025, 3, 13, 13, 0, tzinfo=PARIS)  # 08:00 in New York (DST there)
    assert next_calling_time(call_zones="Pacific/Kiritimati,Pacific/Pago_Pago", at=now, start=EIGHT,
                             end=dt.time(9, 0)) is None


def test_the_page_offers_the_presets_and_a_preset_is_accepted_by_the_save(agent):
    case = case_now(10)
    case_claim_next(agent=agent)
    client = Client()
    client.force_login(agent)
    page = client.get(f"/agent/case/{case.pk}/").content.decode()
    values = dict(re.findall(r'data-preset="(\w+)" data-value="([0-9T:-]+)"', page))
    assert set(values) == {"in_an_hour", "tomorrow_morning", "same_time_tomorrow"}
    response = client.post(f"/agent/case/{case.pk}/", {"outcome": "callback_requested",
                                                      "callback_at": values["tomorrow_morning"]})
    assert response.status_code == 302
    assert Disposition.objects.get(case=case).callback_at is not None


def test_a_refused_save_names_the_failed_field_for_the_focus_and_describes_it(agent):
    case = case_now(10)
    case_claim_next(agent=agent)
    client = Client()
    client.force_login(agent)
    url = f"/agent/case/{case.pk}/"
    # A callback without its time
    page = client.post(url, {"outcome": "callback_requested"}).content.decode()
    assert 'data-first-error="callback_at"' in page
    assert re.search(r'<input[^>]*aria-describedby="id_callback_at_error"[^>]*id="id_callback_at"', page) \
        or re.search(r'<input[^>]*id="id_callback_at"[^>]*aria-describedby="id_callback_at_error"', page)
    assert 'id="id_callback_at_error"' in page
    # A time outside calling hours (the service refuses it): the same field
    zone = zoneinfo.ZoneInfo(case.customer.call_zones)
    three_am = (timezone.now().astimezone(zone) + dt.timedelta(days=1)).replace(hour=3, minute=0)
    page = client.post(url, {"outcome": "callback_requested", "callback_at": f"{three_am:%Y-%m-%dT%H:%M}"}).content.decode()
    assert 'data-first-error="callback_at"' in page and "Outside calling hours" in page
    assert 'id="id_callback_at_error"' in page
    # No outcome at all: the outcomes, described by their error
    page = client.post(url, {}).content.decode()
    assert 'data-first-error="outcome"' in page and 'aria-describedby="id_outcome_error"' in page
    assert not Disposition.objects.exists()


def test_the_first_failed_field_follows_the_page_order():
    form = DispositionForm({"outcome": "nonsense", "callback_at": "yesterday"})
    assert not form.is_valid()
    assert form.first_error_field() == "outcome"
    form = DispositionForm({"outcome": "busy", "callback_at": "soon", "offer": "999999"})
    assert not form.is_valid()
    assert form.first_error_field() == "callback_at"


def test_the_release_api_puts_the_case_back_too(agent):
    # Given an agent who claimed the top case through the API
    top, other = case_now(500), case_now(10)
    client = Client()
    client.force_login(agent)
    assert client.post("/api/queue/next/").json()["case"]["id"] == top.pk
    # When they release it and ask for the next customer
    assert client.post(f"/api/cases/{top.pk}/release/").status_code == 200
    # Then they get the other customer, not the same one again
    assert client.post("/api/queue/next/").json()["case"]["id"] == other.pk
    assert CaseEvent.objects.filter(case=top, kind="released", reason="Put back in the queue.").exists()


def test_the_card_api_gives_the_guide_the_case_page_shows(agent):
    # Given a recovery case with an open complaint
    case = case_now(500)
    WinbackCase.objects.filter(pk=case.pk).update(is_recovery=True)
    ComplaintFactory(customer=case.customer, summary="Parcel arrived broken")
    client = Client()
    client.force_login(agent)
    # When the agent claims it through the API
    card = client.post("/api/queue/next/").json()
    # Then the guide is the recovery guide, opening with the complaint
    assert card["call_guide_kind"] == "recovery"
    assert [str(s) for s in card["call_guide"]] == [str(s) for s in RECOVERY_GUIDE]
    assert "Parcel arrived broken" in card["call_guide_opening"][0]
