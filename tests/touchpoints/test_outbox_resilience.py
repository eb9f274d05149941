"""One bad value never stops the outbox: a touchpoint that cannot be claimed fails with its reason and its
batch goes on; a cadence or step whose dates cannot be computed is skipped and reported, the others run."""

import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone

from core.cache import Recent
from crm.models import Contact
from tests.factories import CadenceFactory, CadenceStepFactory, OfferFactory, OrderFactory
from tests.touchpoints.conftest import NOW, make_customer, make_step, make_touchpoint
from tests.winback.bounds import legacy_update
from touchpoints.models import Touchpoint, TouchpointSettings
from touchpoints.services import sending
from touchpoints.services.dispatch import touchpoints_dispatch, touchpoints_repair
from touchpoints.services.sending import touchpoint_limits, touchpoint_send
from touchpoints.tasks import send_batch_task, tick_task
from winback.models import Coupon

pytestmark = pytest.mark.django_db


def with_status(customer, status):
    customer.status = status
    customer.save(update_fields=["status"])
    return customer


@pytest.fixture
def no_quiet_hours_now(monkeypatch) -> dt.datetime:
    """The worker's task reads the clock: quiet hours (for UTC customers) are moved away from it. The limits
    each process caches are put back afterwards, so later tests do not send in the quiet hours."""
    monkeypatch.setattr(sending, "_limits", Recent(sending._limits_load))
    now = timezone.now()
    TouchpointSettings.objects.filter(pk=1).update(quiet_start=(now + dt.timedelta(hours=2)).time(),
                                                   quiet_end=(now + dt.timedelta(hours=3)).time())
    touchpoint_limits(fresh=True)
    return now


def test_a_touchpoint_whose_coupon_cannot_be_issued_fails_and_the_rest_of_its_batch_is_sent(settings, no_quiet_hours_now):
    # Given a full batch, first in line a win-back offer whose offer was stored before validity was bounded
    settings.TOUCHPOINT_BATCH_SIZE = 50
    now = no_quiet_hours_now
    poisoned_offer = legacy_update(OfferFactory(), valid_days=2_147_483_647)
    poisoned = make_touchpoint(with_status(make_customer(timezone="UTC"), "at_risk"), make_step(offer=poisoned_offer),
                               due_at=now - dt.timedelta(minutes=10))
    step = make_step()
    others = [make_touchpoint(with_status(make_customer(timezone="UTC"), "at_risk"), step,
                              due_at=now - dt.timedelta(minutes=5)) for _ in range(49)]
    with transaction.atomic():
        batches = touchpoints_dispatch(now=now)
    assert batches == [[poisoned.pk, *(tp.pk for tp in others)]]
    # When a worker runs the batch
    outcomes = send_batch_task(batches[0])
    # Then the 49 others are sent, and the poisoned one failed with the reason and no coupon
    assert outcomes == {"failed": 1, "sent": 49}
    assert Touchpoint.objects.filter(pk__in=[tp.pk for tp in others], status="sent").count() == 49
    poisoned.refresh_from_db()
    assert poisoned.status == "failed" and "cannot be issued" in poisoned.last_error
    assert poisoned.coupon_id is None and not Coupon.objects.filter(offer=poisoned_offer).exists()
    # and later ticks do not hand it out again
    later = now + dt.timedelta(seconds=settings.TOUCHPOINT_QUEUE_LEASE_SECONDS + 60)
    with transaction.atomic():
        assert touchpoints_dispatch(now=later) == []


def test_a_check_in_whose_interval_is_beyond_any_date_is_sent_and_the_outbox_goes_on():
    # Given a check-in cadence stored before its interval was bounded
    step = make_step(trigger="checkin", template="checkin")
    legacy_update(step.cadence, interval_days=2_147_483_647)
    customer = with_status(make_customer(), "active")
    tp = make_touchpoint(customer, step)
    # When it is sent
    outcome = touchpoint_send(touchpoint_id=tp.pk, now=NOW)
    # Then it is sent and on the timeline; only the next check-in, which no date can hold, is not scheduled
    tp.refresh_from_db()
    assert (outcome, tp.status) == ("sent", "sent")
    assert Contact.objects.filter(pk=tp.contact_id, customer=customer).exists()
    assert list(Touchpoint.objects.filter(step=step)) == [tp]
    assert touchpoints_repair(now=NOW + dt.timedelta(hours=1)) == 0


def test_the_tick_skips_and_reports_a_step_or_cadence_whose_dates_overflow_and_runs_the_others(caplog):
    # Given a new order, an order cadence with a good step and a step stored before offsets were bounded,
    # another order cadence, and a check-in cadence whose interval no date can hold
    customer = with_status(make_customer(), "active")
    OrderFactory(customer=customer, ordered_at=timezone.now() - dt.timedelta(hours=1))
    mixed = CadenceFactory(name="Mixed")
    mixed_good = CadenceStepFactory(cadence=mixed, position=1)
    mixed_bad = legacy_update(CadenceStepFactory(cadence=mixed, position=2), offset_days=3_000_000)
    good = CadenceStepFactory(cadence=CadenceFactory(name="Good"))
    checkin = legacy_update(CadenceFactory(name="Often", trigger="checkin", marketing=True), interval_days=2_147_483_647)
    CadenceStepFactory(cadence=checkin, template="checkin")
    # When the tick runs
    summary = tick_task()
    # Then the good steps got their touchpoints, and the two others were skipped and reported
    assert Touchpoint.objects.filter(customer=customer, step__in=[mixed_good, good]).count() == 2
    assert not Touchpoint.objects.filter(step__cadence=checkin).exists()
    assert not Touchpoint.objects.filter(step=mixed_bad).exists()
    assert "2 cadences or steps skipped" in summary
    logged = caplog.text
    assert f"cadence {mixed.pk}, step {mixed_bad.pk} skipped" in logged and f"cadence {checkin.pk} skipped" in logged
