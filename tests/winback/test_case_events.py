"""Every change of a case leaves a CaseEvent (who or what, when, from, to, why), and replaying a case's
events gives its current state."""

import datetime as dt

import pytest

from crm.services.audit import SYSTEM
from crm.services.records import complaint_create
from tests.factories import UserFactory
from tests.winback.conftest import add_orders, customer_with_orders, day
from winback.models import CaseEvent, WinbackCase
from winback.services.cases import case_replay
from winback.services.lifecycle import lifecycle_refresh, lifecycle_scan
from winback.services.policy import policy_change
from winback.services.queue import DispositionInput, case_claim_next, case_record_disposition, case_release

pytestmark = pytest.mark.django_db


def _state(case: WinbackCase) -> dict:
    case.refresh_from_db()
    return {"status": case.status, "claimed_by_id": case.claimed_by_id, "is_recovery": case.is_recovery}


def test_a_cases_whole_life_is_in_its_events_and_replays_to_its_state():
    # Given a customer who lapsed (no holdout, so the case is worked), and two agents
    policy_change(user=None, values={"holdout_share": 0}, note="everyone is called")
    customer = customer_with_orders([0, 30, 60], phone="+33612345678", timezone="Europe/Paris")
    ann, bob = UserFactory(username="ann"), UserFactory(username="bob")
    noon = day(200)  # 13:00 in Paris: calling hours
    lifecycle_scan(full=True, now=noon)
    case = WinbackCase.objects.get(customer=customer)

    # When agents work it: no answer, a claim after the gap, a release, a claim and a booked callback
    assert case_claim_next(agent=ann, now=noon) == case
    case_record_disposition(agent=ann, case_id=case.pk, data=DispositionInput(outcome="no_answer"), now=noon)
    later = noon + dt.timedelta(hours=5)
    assert case_claim_next(agent=bob, now=later) == case
    case_release(agent=bob, case_id=case.pk, now=later)
    assert case_claim_next(agent=ann, now=later) == case
    assert _state(case) == case_replay(case_id=case.pk)  # held, as the events say
    callback = dt.datetime(2024, 7, 21, 10, 0)  # the customer's local time, the next morning
    case_record_disposition(agent=ann, case_id=case.pk, now=later,
                            data=DispositionInput(outcome="callback_requested", callback_local=callback))
    # ... a complaint makes it a recovery call, and then the customer orders again
    complaint_create(actor=SYSTEM, data={"customer": customer, "opened_at": later, "summary": "Broken"})
    lifecycle_refresh(customer_ids=[customer.pk], now=later + dt.timedelta(minutes=1))
    assert _state(case)["is_recovery"] is True
    add_orders(customer, [203])
    lifecycle_refresh(customer_ids=[customer.pk], now=day(203) + dt.timedelta(hours=1))

    # Then each change is an event, in order, with who did it
    events = list(CaseEvent.objects.filter(case=case).order_by("at", "id"))
    assert [(e.kind, e.actor, e.agent_id) for e in events] == [
        ("opened", "lifecycle scan", None),
        ("claimed", "agent", ann.pk), ("worked", "agent", ann.pk),
        ("claimed", "agent", bob.pk), ("released", "agent", bob.pk),
        ("claimed", "agent", ann.pk), ("worked", "agent", ann.pk),
        ("recovery", "complaints", None),
        ("closed", "lifecycle scan", None),
    ]
    assert (events[-1].from_status, events[-1].to_status, events[-1].reason) == ("open", "won", "Ordered again.")
    # ... and replaying them gives the case as it stands
    assert case_replay(case_id=case.pk) == _state(case) == {"status": "won", "claimed_by_id": None, "is_recovery": True}


def test_an_expired_lease_is_released_by_the_queue_before_another_agent_claims_it():
    policy_change(user=None, values={"holdout_share": 0}, note="everyone is called")
    customer = customer_with_orders([0, 30, 60], phone="+33612345678", timezone="Europe/Paris")
    ann, bob = UserFactory(username="ann"), UserFactory(username="bob")
    lifecycle_scan(full=True, now=day(200))
    case = WinbackCase.objects.get(customer=customer)
    case_claim_next(agent=ann, now=day(200))

    # When ann's lease runs out and bob asks for work (twice: a claim wakes cases for the next one)
    after_lease = day(200) + dt.timedelta(minutes=20)
    claimed = case_claim_next(agent=bob, now=after_lease) or case_claim_next(agent=bob, now=after_lease)

    # Then the queue released ann's claim, and bob holds the case
    assert claimed == case
    kinds = list(CaseEvent.objects.filter(case=case).order_by("at", "id").values_list("kind", "actor", "agent_id"))
    assert kinds[-2:] == [("released", "queue", ann.pk), ("claimed", "agent", bob.pk)]
    assert case_replay(case_id=case.pk) == _state(case)
