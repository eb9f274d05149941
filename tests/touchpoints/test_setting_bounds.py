"""Every number a manager sets for cadences and sending is bounded in the model (so the admin), in the
database, and in the migration for rows stored before; what is wrong with the settings in use is listed."""

import datetime as dt
from decimal import Decimal

import pytest

from tests.factories import CadenceFactory, CadenceStepFactory, OfferFactory
from tests.winback.bounds import assert_refused, legacy_update, schema_at
from touchpoints.models import Cadence, CadenceStep, TouchpointSettings
from touchpoints.selectors import settings_problems

pytestmark = pytest.mark.django_db


def cadence(**fields):
    return Cadence(**({"name": "Test", "trigger": "checkin"} | fields))


def step(**fields):
    return CadenceStep(cadence=CadenceFactory(), channel="email", template="thank_you", **fields)


def sending_settings(**fields):
    row = TouchpointSettings.objects.get(pk=1)
    for name, value in fields.items():
        setattr(row, name, value)
    return row


@pytest.mark.parametrize("make, field, value", [
    (step, "offset_days", 3_000_000),
    (step, "offset_days", 3651),
    (step, "offset_hours", 745),
    (cadence, "interval_days", 3651),
    (cadence, "interval_days", 0),
    (cadence, "min_orders", 100_001),
    (cadence, "min_total_spent", Decimal("-1")),
    (sending_settings, "cap_count", 0),
    (sending_settings, "cap_count", 101),
    (sending_settings, "cap_days", 30_000),
    (sending_settings, "retry_base_seconds", 21_601),
    (sending_settings, "stale_after_hours", 2_147_483_647),
])
def test_an_out_of_range_setting_is_refused_by_the_model_and_by_the_database(make, field, value):
    assert_refused(make(**{field: value}), field)


def test_milestones_are_order_numbers_up_to_the_bound_for_the_model_and_the_database_alike():
    # Spaces are ignored and leading zeros allowed, by both
    row = cadence(milestones="5, 010,100 000", trigger="milestone")
    row.full_clean()
    row.save()
    assert row.milestone_numbers() == [5, 10, 100_000]
    # and both refuse what is no order number from 1 to 100000 ("²" is a digit to Python's isdigit)
    for bad in ("5,10,3000000", "5,0", "5,²", "5,1 000 000"):
        assert_refused(cadence(milestones=bad), "milestones")


def test_the_admin_refuses_an_out_of_range_setting_and_keeps_the_row(client, manager):
    # Given a manager on the sending settings page
    client.force_login(manager)
    row = TouchpointSettings.objects.get(pk=1)
    form = {"cap_count": row.cap_count, "cap_days": 30_000, "transactional_exempt": "on", "quiet_start": "21:00",
            "quiet_end": "08:00", "retry_base_seconds": row.retry_base_seconds,
            "stale_after_hours": row.stale_after_hours}
    # When they save a frequency-cap window of 30000 days
    response = client.post("/admin/touchpoints/touchpointsettings/1/change/", form)
    # Then the form shows the error and the row is unchanged
    assert response.status_code == 200
    assert "Ensure this value is less than or equal to 366." in response.content.decode()
    assert TouchpointSettings.objects.get(pk=1).cap_days == row.cap_days


def test_settings_problems_lists_bad_old_rows_empty_cadences_quiet_hours_and_retired_offers():
    # Given the shipped cadences and settings: nothing to report
    assert settings_problems() == []
    # When old rows hold what the model refuses today, a cadence is left without a step, quiet hours start
    # and end at once, and a step still issues an offer that is no longer active
    legacy_update(CadenceStepFactory(cadence=CadenceFactory(name="Far"), position=2), offset_days=3_000_000)
    legacy_update(CadenceFactory(name="Often", trigger="checkin"), interval_days=0).steps.create(template="checkin")
    CadenceFactory(name="Empty")
    CadenceFactory(name="Off", enabled=False)  # disabled: not in use, not reported
    retired = legacy_update(OfferFactory(name="Old deal", active=False), valid_days=0)
    CadenceStepFactory(cadence=CadenceFactory(name="Deal"), offer=retired)
    TouchpointSettings.objects.filter(pk=1).update(quiet_start=dt.time(21), quiet_end=dt.time(21))
    # Then each is listed in words
    problems = settings_problems()
    text = "\n".join(problems)
    assert "Cadence “Far”, step 2: days after the trigger is 3000000. Ensure this value is less than or equal to 3650." in problems
    assert "Cadence “Often”: days between check-ins is 0." in text
    assert "Cadence “Empty” is enabled but has no enabled step: it sends nothing." in problems
    assert "Off" not in text
    assert "Cadence “Deal”, step 1 issues the offer “Old deal”, which is no longer active." in problems
    assert "Cadence “Deal”, step 1, offer “Old deal”: valid days is 0." in text
    assert "Touchpoint settings: quiet hours end is 21:00:00. Quiet hours must start and end at different times." in problems
    assert len(problems) == 6, problems


def test_the_admin_shows_the_problems_on_the_cadence_settings_and_outbox_pages(client, manager):
    CadenceFactory(name="Empty")
    client.force_login(manager)
    cadence_id = Cadence.objects.get(name="Empty").pk
    for url in ("/admin/touchpoints/cadence/", f"/admin/touchpoints/cadence/{cadence_id}/change/",
                "/admin/touchpoints/touchpointsettings/1/change/", "/admin/touchpoints/touchpoint/"):
        page = client.get(url).content.decode()
        assert "Cadence “Empty” is enabled but has no enabled step" in page, url


@pytest.mark.django_db(transaction=True)
def test_the_migration_brings_old_rows_into_range_before_it_adds_the_checks():
    # Given a database before the bounds, with rows a manager could enter then
    with schema_at(("touchpoints", "0003_scan_order_marks")) as old:
        Old = {name: old.get_model("touchpoints", name) for name in ("Cadence", "CadenceStep", "TouchpointSettings")}
        far = Old["Cadence"].objects.create(name="Far", trigger="milestone", interval_days=0, min_orders=10**9,
                                            min_total_spent=Decimal("-5"), milestones="5, 0,3000000,x,10")
        late = Old["CadenceStep"].objects.create(cadence=far, offset_days=2_147_483_647, offset_hours=10**6,
                                                 template="milestone")
        Old["TouchpointSettings"].objects.update_or_create(pk=1, defaults={
            "cap_count": 0, "cap_days": 30_000, "max_attempts": 30_000, "retry_base_seconds": 10**9,
            "stale_after_hours": 2_147_483_647})
        # When it is migrated (on leaving the block)
    # Then every value is at the nearest bound (a milestone that is no order number is dropped)
    far = Cadence.objects.get(pk=far.pk)
    assert (far.interval_days, far.min_orders, far.min_total_spent, far.milestones) == (1, 100_000, 0, "5,10")
    late = CadenceStep.objects.get(pk=late.pk)
    assert (late.offset_days, late.offset_hours) == (3650, 744)
    row = TouchpointSettings.objects.get(pk=1)
    assert (row.cap_count, row.cap_days, row.retry_base_seconds, row.stale_after_hours) == (1, 366, 21_600, 744)
    # and the checks are in place
    assert_refused(CadenceStep(cadence=far, offset_days=3651, template="milestone"), "offset_days")


def test_the_preview_of_a_step_with_an_offer_out_of_bounds_shows_the_message_and_the_problem(client, manager):
    # Given a step whose offer was stored before validity was bounded
    offer = legacy_update(OfferFactory(name="Forever"), valid_days=2_147_483_647)
    step = CadenceStepFactory(cadence=CadenceFactory(name="Deal", marketing=True), template="winback_offer", offer=offer)
    client.force_login(manager)
    # When a manager previews it
    response = client.get(f"/admin/touchpoints/cadence/step/{step.pk}/preview/?locale=en")
    # Then the page shows the message, with the coupon code but no date, and why
    page = response.content.decode()
    assert response.status_code == 200
    assert "TEST-SAMPLE42" in page and "Valid until" not in page
    assert "The offer “Forever” cannot be issued" in page
