import datetime as dt
from decimal import Decimal
from itertools import count

import pytest
from django.db import OperationalError
from django.utils import timezone

from crm.models import Customer
from crm.services.audit import SYSTEM
from crm.services.orders import OrderInput, orders_insert
from tests.factories import ComplaintFactory, FeedbackFactory
from tests.touchpoints.conftest import NOW, make_customer, make_step
from touchpoints.models import Cadence, Touchpoint
from touchpoints.services.materialize import touchpoints_materialize
from touchpoints.services.sending import touchpoint_send
from winback.models import LifecycleEvent

pytestmark = pytest.mark.django_db

DAY, HOUR = dt.timedelta(days=1), dt.timedelta(hours=1)
_ids = count()


def only(*triggers: str) -> None:
    """Disable the default cadences of every other trigger, so the assertions can be exact."""
    Cadence.objects.exclude(trigger__in=triggers).update(enabled=False)


def add_orders(customer: Customer, times: list[dt.datetime], amount: str = "50.00") -> None:
    items = [OrderInput(f"MAT{next(_ids)}", customer.external_id, t, Decimal(amount), "EUR") for t in times]
    orders_insert(actor=SYSTEM, items=items, all_or_nothing=True)
    customer.refresh_from_db()


def customer_with_orders(times: list[dt.datetime], amount: str = "50.00", **kwargs) -> Customer:
    customer = make_customer(**kwargs)
    if times:
        add_orders(customer, times, amount)
    return customer


def touchpoints(customer: Customer) -> list[tuple[str, str, str, dt.datetime]]:
    """(template, channel, anchor, due_at) of the customer's touchpoints, by due time."""
    rows = Touchpoint.objects.filter(customer=customer).select_related("step").order_by("due_at", "step__position")
    return [(t.step.template, t.channel, t.anchor, t.due_at) for t in rows]


def real_now() -> dt.datetime:
    # The scan looks at rows recorded since the previous run (created_at, updated_at are wall-clock times),
    # so these tests run at the real time.
    return timezone.now()


# --- Orders ------------------------------------------------------------------------------------------


def test_an_order_just_placed_gets_a_thank_you_now_and_a_follow_up_a_week_later():
    only("order")
    now = real_now()
    # Given an order placed a minute ago
    customer = customer_with_orders([now - dt.timedelta(minutes=1)])
    order = customer.orders.get()
    # When the materialiser runs
    result = touchpoints_materialize(now=now)
    # Then there is a thank-you due at the order time and the follow-up a week later, both emails
    assert result.total == 2
    assert touchpoints(customer) == [
        ("thank_you", "email", f"order:{order.pk}", order.ordered_at),
        ("order_follow_up", "email", f"order:{order.pk}", order.ordered_at + 7 * DAY),
    ]
    assert all(t.status == "scheduled" and t.anchor_at == order.ordered_at for t in Touchpoint.objects.all())


def test_running_the_materialiser_again_adds_nothing():
    only("order")
    now = real_now()
    customer = customer_with_orders([now - dt.timedelta(minutes=1)])
    assert touchpoints_materialize(now=now).total == 2
    before = touchpoints(customer)
    # When it runs again, at once and later (the order is still inside the overlap window)
    again = touchpoints_materialize(now=now)
    later = touchpoints_materialize(now=now + HOUR)
    # Then nothing is added: the idempotency key is unique
    assert again.total == later.total == 0
    assert touchpoints(customer) == before
    assert Touchpoint.objects.count() == 2


def test_a_backfilled_order_from_a_year_ago_gets_nothing():
    only("order")
    now = real_now()
    touchpoints_materialize(now=now - dt.timedelta(minutes=5))  # a previous tick
    # Given an order of last year, imported now
    customer = customer_with_orders([now - 365 * DAY])
    # When the materialiser runs
    assert touchpoints_materialize(now=now).total == 0
    assert touchpoints(customer) == []


def test_an_order_reported_a_few_hours_late_still_gets_its_thank_you_and_follow_up():
    """The shop's integration sends an order five hours after it was placed (a batch, a short outage).
    The thank-you is five hours late (well within stale_after_hours = 48) and the follow-up is due in
    almost a week: both are worth sending, as with late lifecycle events and answers."""
    only("order")
    now = real_now()
    touchpoints_materialize(now=now - HOUR)  # the previous tick, before the order arrived
    customer = customer_with_orders([now - 5 * HOUR])
    order = customer.orders.get()
    touchpoints_materialize(now=now)
    assert touchpoints(customer) == [
        ("thank_you", "email", f"order:{order.pk}", order.ordered_at),
        ("order_follow_up", "email", f"order:{order.pk}", order.ordered_at + 7 * DAY),
    ]


# --- Milestones --------------------------------------------------------------------------------------


def test_the_fifth_order_is_a_milestone_and_the_fourth_is_not():
    only("milestone")
    now = real_now()
    # Given a customer with three old orders, whose fourth order comes in
    customer = customer_with_orders([now - 60 * DAY, now - 50 * DAY, now - 40 * DAY])
    add_orders(customer, [now - 2 * HOUR])
    # Then the fourth is no milestone
    assert touchpoints_materialize(now=now).total == 0
    # When the fifth comes in
    fifth = now + dt.timedelta(minutes=1)
    add_orders(customer, [fifth])
    touchpoints_materialize(now=now + dt.timedelta(minutes=2))
    # Then one milestone touchpoint celebrates it, an hour after the order (the default step)
    assert touchpoints(customer) == [("milestone", "email", "milestone:5", fifth + HOUR)]


def test_the_fourth_and_fifth_orders_in_one_run_give_exactly_one_milestone():
    only("milestone")
    now = real_now()
    customer = customer_with_orders([now - 60 * DAY, now - 50 * DAY, now - 40 * DAY])
    fourth, fifth = now - 3 * HOUR, now - 2 * HOUR
    add_orders(customer, [fifth, fourth])  # one import, in any order
    assert touchpoints_materialize(now=now).total == 1
    assert touchpoints(customer) == [("milestone", "email", "milestone:5", fifth + HOUR)]
    assert touchpoints_materialize(now=now + HOUR).total == 0


# --- Lifecycle events --------------------------------------------------------------------------------


def test_an_at_risk_event_schedules_the_appreciation_two_hours_later():
    only("at_risk", "lapsed")
    now = real_now()
    customer = make_customer()
    occurred = now - 30 * dt.timedelta(minutes=1)
    LifecycleEvent.objects.create(customer=customer, kind="at_risk", occurred_at=occurred)
    assert touchpoints_materialize(now=now).total == 1
    assert touchpoints(customer) == [("appreciation", "email", "at_risk", occurred + 2 * HOUR)]


def test_a_lapse_schedules_the_whole_win_back_sequence():
    only("at_risk", "lapsed")
    now = real_now()
    customer = make_customer()
    occurred = now - HOUR
    LifecycleEvent.objects.create(customer=customer, kind="lapsed", occurred_at=occurred)
    touchpoints_materialize(now=now)
    assert touchpoints(customer) == [
        ("winback_miss_you", "email", "lapsed", occurred + 2 * HOUR),
        ("winback_offer", "email", "lapsed", occurred + 7 * DAY),
        ("winback_last_chance", "email", "lapsed", occurred + 21 * DAY),
    ]
    offer_step = Touchpoint.objects.get(customer=customer, step__template="winback_offer").step
    assert offer_step.offer.code_prefix == "BACK10"
    assert touchpoints_materialize(now=now + HOUR).total == 0


def test_a_cancellation_starts_the_win_back_sequence_too():
    only("lapsed")
    now = real_now()
    customer = make_customer()
    LifecycleEvent.objects.create(customer=customer, kind="cancelled", occurred_at=now - HOUR)
    assert touchpoints_materialize(now=now).total == 3
    assert [t[0] for t in touchpoints(customer)] == ["winback_miss_you", "winback_offer", "winback_last_chance"]


def test_an_old_lapse_skips_the_stale_steps_and_keeps_the_future_ones():
    only("at_risk", "lapsed")
    now = real_now()
    # Given a lapse three days ago (recorded only now) and an at-risk crossing as old
    customer = make_customer()
    occurred = now - 3 * DAY
    LifecycleEvent.objects.create(customer=customer, kind="lapsed", occurred_at=occurred)
    other = make_customer()
    LifecycleEvent.objects.create(customer=other, kind="at_risk", occurred_at=occurred)
    # When the materialiser runs
    touchpoints_materialize(now=now)
    # Then step 1 (day 0, 70 h late: beyond the 48 h) is skipped, steps 2 and 3 are created
    assert touchpoints(customer) == [
        ("winback_offer", "email", "lapsed", occurred + 7 * DAY),
        ("winback_last_chance", "email", "lapsed", occurred + 21 * DAY),
    ]
    # And the at-risk message, as stale, is not created at all
    assert touchpoints(other) == []


# --- Complaints and detractors -----------------------------------------------------------------------


def test_a_resolved_complaint_gets_a_follow_up_a_day_after_its_resolution():
    only("complaint_resolved")
    now = real_now()
    customer = make_customer()
    resolved_at = now - HOUR
    complaint = ComplaintFactory(customer=customer, opened_at=now - 3 * DAY, status="resolved", resolved_at=resolved_at)
    still_open = ComplaintFactory(customer=make_customer(), opened_at=now - DAY)
    assert touchpoints_materialize(now=now).total == 1
    assert touchpoints(customer) == [("complaint_follow_up", "email", f"complaint:{complaint.pk}", resolved_at + DAY)]
    assert touchpoints(still_open.customer) == []


def test_a_complaint_resolution_recorded_late_still_gets_its_follow_up_when_it_is_not_stale():
    """Resolved 60 hours ago but recorded (imported) only now: the follow-up was due 36 hours ago, within
    stale_after_hours = 48, so it is still worth sending (the rule at send time would send it)."""
    only("complaint_resolved")
    now = real_now()
    customer = make_customer()
    resolved_at = now - 60 * HOUR
    complaint = ComplaintFactory(customer=customer, opened_at=now - 5 * DAY, status="resolved", resolved_at=resolved_at)
    touchpoints_materialize(now=now)
    assert touchpoints(customer) == [("complaint_follow_up", "email", f"complaint:{complaint.pk}", resolved_at + DAY)]


def test_an_nps_detractor_gets_a_call_and_a_passive_does_not():
    only("nps_detractor")
    now = real_now()
    detractor, passive = make_customer(), make_customer()
    answer = FeedbackFactory(customer=detractor, kind="nps", score=6, responded_at=now - HOUR)
    FeedbackFactory(customer=passive, kind="nps", score=7, responded_at=now - HOUR)
    FeedbackFactory(customer=passive, kind="csat", score=1, responded_at=now - HOUR)  # not an NPS answer
    assert touchpoints_materialize(now=now).total == 1
    assert touchpoints(detractor) == [("", "call", f"feedback:{answer.pk}", answer.responded_at)]
    assert touchpoints(passive) == []


# --- Anniversaries -----------------------------------------------------------------------------------


def test_an_anniversary_is_celebrated_once_on_the_day():
    only("anniversary")
    today = NOW  # 2026-03-10 12:00 UTC
    # Given a customer acquired on this date three years ago, and others acquired on other dates
    customer = make_customer(acquired_at=dt.datetime(2023, 3, 10, 9, 30, tzinfo=dt.UTC))
    make_customer(acquired_at=dt.datetime(2023, 3, 11, 9, 30, tzinfo=dt.UTC))
    make_customer(acquired_at=dt.datetime(2026, 3, 10, 9, 30, tzinfo=dt.UTC) - 30 * DAY)
    make_customer(acquired_at=dt.datetime(2026, 3, 10, 1, 0, tzinfo=dt.UTC))  # today: no anniversary yet
    # When the materialiser runs that day
    assert touchpoints_materialize(now=today).total == 1
    # Then they get one anniversary touchpoint, at their acquisition time of day, with the years
    anchor_at = dt.datetime(2026, 3, 10, 9, 30, tzinfo=dt.UTC)
    assert touchpoints(customer) == [("anniversary", "email", "anniversary:3", anchor_at)]
    # And the second run of the day adds nothing, even for a customer who now matches
    late = make_customer(acquired_at=dt.datetime(2020, 3, 10, 8, 0, tzinfo=dt.UTC))
    assert touchpoints_materialize(now=today + HOUR).total == 0
    assert touchpoints(late) == []
    # When the next day comes, it runs again: that day's anniversaries, none twice
    tomorrows = make_customer(acquired_at=dt.datetime(2020, 3, 11, 10, 0, tzinfo=dt.UTC))
    assert touchpoints_materialize(now=dt.datetime(2026, 3, 11, 0, 5, tzinfo=dt.UTC)).total == 2
    assert touchpoints(tomorrows) == [
        ("anniversary", "email", "anniversary:6", dt.datetime(2026, 3, 11, 10, 0, tzinfo=dt.UTC))]
    assert len(touchpoints(customer)) == 1


def test_a_customer_acquired_on_29_february_is_celebrated_on_28_february_in_other_years():
    only("anniversary")
    leap_day = make_customer(acquired_at=dt.datetime(2024, 2, 29, 10, 0, tzinfo=dt.UTC))
    the_28th = make_customer(acquired_at=dt.datetime(2024, 2, 28, 11, 0, tzinfo=dt.UTC))
    # In a common year, both on 28 February
    touchpoints_materialize(now=dt.datetime(2026, 2, 28, 12, 0, tzinfo=dt.UTC))
    assert touchpoints(leap_day) == [("anniversary", "email", "anniversary:2", dt.datetime(2026, 2, 28, 10, 0, tzinfo=dt.UTC))]
    assert touchpoints(the_28th) == [("anniversary", "email", "anniversary:2", dt.datetime(2026, 2, 28, 11, 0, tzinfo=dt.UTC))]
    # And not again on 1 March
    assert touchpoints_materialize(now=dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)).total == 0
    # In a leap year, on their own day only
    assert touchpoints_materialize(now=dt.datetime(2028, 2, 28, 12, 0, tzinfo=dt.UTC)).total == 1
    touchpoints_materialize(now=dt.datetime(2028, 2, 29, 12, 0, tzinfo=dt.UTC))
    assert [t[2:] for t in touchpoints(leap_day)][-1] == ("anniversary:4", dt.datetime(2028, 2, 29, 10, 0, tzinfo=dt.UTC))
    assert len(touchpoints(leap_day)) == len(touchpoints(the_28th)) == 2


def test_a_crash_in_the_days_first_run_does_not_lose_that_days_anniversaries(monkeypatch):
    """The first run of the day fails half-way (a database error); the next tick must still create the
    day's anniversaries, or they are lost for good (the key and the date match hold only for that day)."""
    import touchpoints.services.materialize as materialize

    only("anniversary")
    customer = make_customer(acquired_at=dt.datetime(2023, 3, 10, 9, 30, tzinfo=dt.UTC))
    real_anchors = materialize._anniversary_anchors

    def fail_once(cadence, *, now):
        monkeypatch.setattr(materialize, "_anniversary_anchors", real_anchors)
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(materialize, "_anniversary_anchors", fail_once)
    with pytest.raises(OperationalError):
        touchpoints_materialize(now=NOW)
    # When the next tick runs, a minute later
    touchpoints_materialize(now=NOW + dt.timedelta(minutes=1))
    # Then the anniversary is there
    assert [t[2] for t in touchpoints(customer)] == ["anniversary:3"]


# --- Check-ins ---------------------------------------------------------------------------------------


def test_check_ins_go_to_the_valued_customers_only_once_and_recur_after_each_send(smtp):
    only("checkin")  # the default: every 90 days, at least 3 orders and 500 spent, active or at risk
    long_ago = [NOW - 200 * DAY, NOW - 150 * DAY, NOW - 120 * DAY]
    valued = customer_with_orders(long_ago, amount="200.00")
    recent = customer_with_orders([NOW - 100 * DAY, NOW - 60 * DAY, NOW - 30 * DAY], amount="200.00")
    small_spender = customer_with_orders(long_ago, amount="100.00")
    few_orders = customer_with_orders(long_ago[:2], amount="300.00")
    gone = customer_with_orders(long_ago, amount="200.00")
    Customer.objects.filter(pk=gone.pk).update(status="lapsed")
    assert (valued.status, valued.order_count, valued.total_spent) == ("active", 3, Decimal("600.00"))
    # When the materialiser runs (daytime)
    assert touchpoints_materialize(now=NOW).total == 2
    # Then the valued customers get one first check-in: now, or one interval after their last order
    assert touchpoints(valued) == [("checkin", "email", "checkin", NOW)]
    assert touchpoints(recent) == [("checkin", "email", "checkin", NOW - 30 * DAY + 90 * DAY)]
    # And those below the thresholds or not active get none
    assert touchpoints(small_spender) == touchpoints(few_orders) == touchpoints(gone) == []
    # And neither a second run that day nor the next day's run adds one
    assert touchpoints_materialize(now=NOW + HOUR).total == 0
    assert touchpoints_materialize(now=NOW + DAY).total == 0
    # When the first check-in is sent
    first = Touchpoint.objects.get(customer=valued)
    assert touchpoint_send(touchpoint_id=first.pk, now=NOW + DAY) == "sent"
    assert len(smtp.messages) == 1
    # Then the next one exists, an interval after it, and the daily run adds no other
    first.refresh_from_db()
    following = Touchpoint.objects.exclude(pk=first.pk).get(customer=valued)
    assert (following.status, following.step_id, following.anchor) == ("scheduled", first.step_id, "checkin")
    assert following.due_at == max(first.due_at, first.sent_at) + 90 * DAY
    assert touchpoints_materialize(now=NOW + 2 * DAY).total == 0
    assert Touchpoint.objects.filter(customer=valued).count() == 2


# --- Audience ----------------------------------------------------------------------------------------


def test_a_cadence_for_arabic_customers_only_materialises_for_them():
    only()  # every default cadence off
    step = make_step(trigger="order", template="thank_you", marketing=False, locales="ar")
    now = real_now()
    arabic = customer_with_orders([now - HOUR], locale="ar", name="سارة أحمد")
    english = customer_with_orders([now - HOUR], locale="en")
    assert touchpoints_materialize(now=now).total == 1
    assert [t.step_id for t in Touchpoint.objects.filter(customer=arabic)] == [step.pk]
    assert touchpoints(english) == []


def test_a_cadence_for_a_regional_locale_reaches_the_customers_with_that_locale():
    """A locale with a region, written as the customers' own is (pt-BR, as the validator's example):
    the audience filter must find them."""
    only()
    make_step(trigger="order", template="thank_you", marketing=False, locales="pt-BR")
    now = real_now()
    brazilian = customer_with_orders([now - HOUR], locale="pt-BR")
    assert touchpoints_materialize(now=now).total == 1
    assert len(touchpoints(brazilian)) == 1
