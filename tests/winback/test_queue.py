import datetime as dt
import threading
import zoneinfo
from decimal import Decimal
from itertools import count

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm.models import Complaint, Contact, Customer
from crm.services.audit import SYSTEM
from crm.services.customers import customer_create, customer_update
from tests.factories import UserFactory, WinbackCaseFactory
from winback.models import Coupon, LeaveReason, Offer, WinbackCase
from winback.services.calling_hours import inside_calling_hours
from winback.services.queue import (
    DispositionInput, NotYourCase, case_claim_next, case_record_disposition, case_release,
)

pytestmark = pytest.mark.django_db
NOON_PARIS = dt.datetime(2025, 3, 12, 11, 0, tzinfo=dt.timezone.utc)  # 12:00 in Paris
_n = count()


def open_case(*, priority: int = 100, tz: str = "Europe/Paris", phone: str = "+33612345678", **case_fields) -> WinbackCase:
    customer, _ = customer_create(actor=SYSTEM, data={"external_id": f"Q{next(_n)}", "name": "Q", "phone": phone, "timezone": tz})
    fields = {"lapsed_at": NOON_PARIS - dt.timedelta(days=10), "opened_at": NOON_PARIS - dt.timedelta(days=9),
              "priority": Decimal(priority), "revenue_12m": Decimal(priority)} | case_fields
    return WinbackCaseFactory(customer=customer, **fields)


@pytest.fixture
def agents():
    return [UserFactory(username=f"agent{i}") for i in range(3)]


def test_the_queue_serves_recovery_calls_then_priority(agents):
    low, high, recovery = open_case(priority=10), open_case(priority=500), open_case(priority=5, is_recovery=True)
    a, b, c = agents
    assert case_claim_next(agent=a, now=NOON_PARIS) == recovery
    assert case_claim_next(agent=b, now=NOON_PARIS) == high
    assert case_claim_next(agent=c, now=NOON_PARIS) == low


def test_an_agent_holds_one_case_and_asking_again_returns_it(agents):
    first, _ = open_case(priority=9), open_case(priority=1)
    assert case_claim_next(agent=agents[0], now=NOON_PARIS) == first
    assert case_claim_next(agent=agents[0], now=NOON_PARIS + dt.timedelta(minutes=1)) == first
    assert WinbackCase.objects.filter(claimed_by=agents[0]).count() == 1


def test_an_expired_lease_returns_the_case_to_the_queue(agents):
    case = open_case()
    assert case_claim_next(agent=agents[0], now=NOON_PARIS) == case
    assert case_claim_next(agent=agents[1], now=NOON_PARIS + dt.timedelta(minutes=14)) is None
    assert case_claim_next(agent=agents[1], now=NOON_PARIS + dt.timedelta(minutes=16)) == case
    with pytest.raises(NotYourCase):
        case_release(agent=agents[0], case_id=case.pk)


def test_holdout_no_phone_and_do_not_call_are_never_offered(agents):
    open_case(holdout=True, ready=False)
    open_case(phone="")
    dnc = open_case(priority=1000)
    customer_update(actor=SYSTEM, customer=dnc.customer, data={"do_not_call": True})
    # The very next claim already skips the do-not-call customer.
    assert case_claim_next(agent=agents[0], now=NOON_PARIS) is None


def test_customers_outside_their_calling_hours_are_not_offered(agents):
    tokyo = open_case(tz="Asia/Tokyo", phone="+81312345678", priority=999)  # 20:00 in Tokyo: callable
    open_case(tz="America/Los_Angeles", phone="+12135550123", priority=1000)  # 04:00 in LA: not
    assert case_claim_next(agent=agents[0], now=NOON_PARIS) == tokyo
    assert case_claim_next(agent=agents[1], now=NOON_PARIS) is None
    assert case_claim_next(agent=agents[1], now=NOON_PARIS + dt.timedelta(hours=1)) is None  # Tokyo now 21:00


def test_a_due_callback_goes_first_to_its_agent_then_to_anyone_after_the_grace(agents):
    a, b, _ = agents
    case = open_case(priority=1)
    open_case(priority=1000)
    assert case_claim_next(agent=a, now=NOON_PARIS).priority == 1000
    case_record_disposition(agent=a, case_id=WinbackCase.objects.get(claimed_by=a).pk, data=DispositionInput(outcome="no_answer"), now=NOON_PARIS)
    mine = case_claim_next(agent=a, now=NOON_PARIS)
    assert mine == case
    # The customer asks to be called back at 15:00 their time (Paris).
    case_record_disposition(agent=a, case_id=case.pk, now=NOON_PARIS,
                            data=DispositionInput(outcome="callback_requested", callback_local=dt.datetime(2025, 3, 12, 15, 0)))
    due = dt.datetime(2025, 3, 12, 14, 0, tzinfo=dt.timezone.utc)
    assert case_claim_next(agent=b, now=due + dt.timedelta(minutes=5)) is None  # not b's callback, grace not over
    assert case_claim_next(agent=a, now=due + dt.timedelta(minutes=5)) == case  # a's own callback, first
    case_release(agent=a, case_id=case.pk)
    WinbackCase.objects.filter(pk=case.pk).update(callback_agent=a, callback_at=due)
    assert case_claim_next(agent=b, now=due + dt.timedelta(minutes=16)) == case  # after the grace, anyone


def test_callback_outside_calling_hours_is_refused_and_changes_nothing(agents):
    case = open_case()
    case_claim_next(agent=agents[0], now=NOON_PARIS)
    with pytest.raises(ValidationError) as exc:
        case_record_disposition(agent=agents[0], case_id=case.pk, now=NOON_PARIS,
                                data=DispositionInput(outcome="callback_requested", callback_local=dt.datetime(2025, 3, 12, 22, 30)))
    assert "calling hours" in str(exc.value)
    assert not Contact.objects.exists()
    assert WinbackCase.objects.get(pk=case.pk).claimed_by == agents[0]


def test_no_answer_waits_the_gap_and_closes_after_the_maximum_attempts(agents):
    case = open_case()
    now = NOON_PARIS - dt.timedelta(hours=3)  # 09:00 Paris
    for attempt in range(1, 7):
        assert case_claim_next(agent=agents[0], now=now) == case
        case_record_disposition(agent=agents[0], case_id=case.pk, data=DispositionInput(outcome="no_answer"), now=now)
        if attempt < 6:
            assert case_claim_next(agent=agents[1], now=now + dt.timedelta(hours=3, minutes=59)) is None
        now += dt.timedelta(days=1)
    case.refresh_from_db()
    assert (case.status, case.attempts) == ("lost", 6)
    assert "6 attempts" in case.close_reason


def test_rules_that_act_at_once(agents):
    a = agents[0]
    dnc, wrong, escalated, declined = (open_case(priority=p) for p in (4, 3, 2, 1))
    price = LeaveReason.objects.get(name="Price")
    for case, outcome in ((dnc, "do_not_call"), (wrong, "wrong_number"), (escalated, "complaint_escalated"), (declined, "reached_declined")):
        assert case_claim_next(agent=a, now=NOON_PARIS) == case
        case_record_disposition(agent=a, case_id=case.pk, now=NOON_PARIS,
                                data=DispositionInput(outcome=outcome, reason_id=price.pk, note="Too expensive now"))
    dnc.refresh_from_db(); wrong.refresh_from_db(); escalated.refresh_from_db(); declined.refresh_from_db()
    assert dnc.status == "lost" and Customer.objects.get(pk=dnc.customer_id).do_not_call
    assert wrong.status == "lost" and Customer.objects.get(pk=wrong.customer_id).phone == ""
    assert escalated.status == "open" and escalated.is_recovery
    assert Complaint.objects.get(customer=escalated.customer).status == "open"
    assert declined.status == "lost" and "Price" in declined.close_reason
    assert Contact.objects.filter(outcome="do_not_call", agent=a).count() == 1


def test_an_offer_issues_a_unique_coupon_linked_to_the_case(agents):
    case = open_case()
    offer = Offer.objects.get(code_prefix="BACK10")
    case_claim_next(agent=agents[0], now=NOON_PARIS)
    disposition = case_record_disposition(agent=agents[0], case_id=case.pk, now=NOON_PARIS,
                                          data=DispositionInput(outcome="reached_will_return", offer_id=offer.pk))
    coupon = disposition.coupon
    assert coupon.code.startswith("BACK10-") and len(coupon.code) == 15
    assert (coupon.case, coupon.customer, coupon.expires_at) == (case, case.customer, NOON_PARIS + dt.timedelta(days=30))
    case.refresh_from_db()
    assert case.awaiting_return and case_claim_next(agent=agents[1], now=NOON_PARIS) is None


def test_another_agents_case_cannot_be_worked(agents):
    case = open_case()
    case_claim_next(agent=agents[0], now=NOON_PARIS)
    with pytest.raises(NotYourCase):
        case_record_disposition(agent=agents[1], case_id=case.pk, data=DispositionInput(outcome="no_answer"), now=NOON_PARIS)


ZONES = ["Europe/Paris", "America/New_York", "America/Los_Angeles", "Asia/Tokyo", "Australia/Lord_Howe",
         "Asia/Kathmandu", "America/St_Johns", "Pacific/Chatham", "Europe/London", "America/Sao_Paulo", ""]
# Instants around DST changes (EU, US, AU/NZ) and around the 08:00 and 21:00 edges.
DST_EDGES = [dt.datetime(2025, 3, 30, 1, tzinfo=dt.timezone.utc), dt.datetime(2025, 10, 26, 1, tzinfo=dt.timezone.utc),
             dt.datetime(2025, 3, 9, 7, tzinfo=dt.timezone.utc), dt.datetime(2025, 11, 2, 6, tzinfo=dt.timezone.utc),
             dt.datetime(2025, 4, 5, 15, tzinfo=dt.timezone.utc), dt.datetime(2025, 9, 27, 14, tzinfo=dt.timezone.utc)]
instants = st.one_of(
    st.sampled_from(DST_EDGES).flatmap(lambda e: st.integers(-36 * 60, 36 * 60).map(lambda m: e + dt.timedelta(minutes=m))),
    st.datetimes(min_value=dt.datetime(2024, 1, 1), max_value=dt.datetime(2027, 1, 1), timezones=st.just(dt.timezone.utc)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(zones=st.lists(st.sampled_from(ZONES), min_size=1, max_size=6), now=instants)
def test_nobody_is_ever_offered_outside_their_calling_hours(zones, now):
    WinbackCase.objects.update(status="void", ready=False, claimed_by=None)
    agent = UserFactory()
    for zone in zones:
        customer, _ = customer_create(actor=SYSTEM, data={"external_id": f"Z{next(_n)}", "name": "Z", "phone": "+33612345678"})
        Customer.objects.filter(pk=customer.pk).update(timezone=zone, call_zones=zone or "America/New_York,America/Chicago")
        WinbackCase.objects.create(customer=customer, lapsed_at=now, opened_at=now, ready=True, priority=Decimal(1))
    offered = []
    while (case := case_claim_next(agent=agent, now=now)) is not None:
        offered.append(case)
        WinbackCase.objects.filter(pk=case.pk).update(status="lost", claimed_by=None)
    expected = 0
    for case in WinbackCase.objects.filter(status__in=["open", "lost"]).select_related("customer"):
        inside = inside_calling_hours(call_zones=case.customer.call_zones, now=now, start=dt.time(8), end=dt.time(21))
        for zone in case.customer.call_zones.split(","):
            local = now.astimezone(zoneinfo.ZoneInfo(zone)).time()
            if case in offered:
                assert dt.time(8) <= local < dt.time(21), (zone, now, local)
        expected += inside
    assert len(offered) == expected  # and everyone inside their hours is offered


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_agents_claiming_at_once_get_distinct_cases():
    cases = [open_case(priority=i) for i in range(100)]
    agents = [UserFactory(username=f"racer{i}") for i in range(20)]
    claimed: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(agent) -> None:
        try:
            while True:
                case = case_claim_next(agent=agent, now=NOON_PARIS)
                if case is None:
                    return
                with lock:
                    claimed.append(case.pk)
                case_record_disposition(agent=agent, case_id=case.pk, data=DispositionInput(outcome="reached_declined"), now=NOON_PARIS)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(a,)) for a in agents]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[:3]
    assert len(claimed) == 100 and sorted(claimed) == sorted(c.pk for c in cases)
    assert WinbackCase.objects.filter(status="lost").count() == 100


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_one_agent_asking_from_four_tabs_at_once_holds_one_case():
    for i in range(8):
        open_case(priority=i)
    agent = UserFactory(username="four-tabs")
    barrier = threading.Barrier(4)
    got: list[int] = []
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            barrier.wait()
            got.append(case_claim_next(agent=agent, now=NOON_PARIS).pk)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    for _ in range(5):  # a few rounds: the claims must really overlap to race
        got.clear()
        threads = [threading.Thread(target=ask) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors[:2]
        held = list(WinbackCase.objects.filter(claimed_by=agent).values_list("pk", flat=True))
        assert len(held) == 1 and got == held * 4
        case_release(agent=agent, case_id=held[0])
