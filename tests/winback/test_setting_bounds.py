"""Every number a manager sets for calls, offers and the dormancy policy is bounded in the model (so the
admin and the API), in the database, and in the migration for rows stored before; a bad old row is shown,
and an agent choosing an offer that cannot be issued gets a clear error, never a 500."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from crm.models import Contact
from tests.factories import OfferFactory
from tests.winback.bounds import assert_refused, legacy_update, schema_at
from tests.winback.conftest import BASE, customer_with_orders
from winback.models import CallSettings, Coupon, Disposition, DormancyPolicy, Offer, WinbackCase
from winback.selectors import settings_problems

pytestmark = pytest.mark.django_db


def offer(**fields):
    return Offer(name="Big", script="Something", code_prefix="BIG", **fields)


def call_settings(**fields):
    row = CallSettings.objects.get(pk=1)
    for name, value in fields.items():
        setattr(row, name, value)
    return row


def policy(**fields):
    current = DormancyPolicy.objects.order_by("-id").first()
    values = {f.name: getattr(current, f.name) for f in DormancyPolicy._meta.concrete_fields if f.name not in ("id", "created_at")}
    return DormancyPolicy(**(values | fields))


@pytest.mark.parametrize("make, field, value", [
    (offer, "valid_days", 2_147_483_647),
    (offer, "valid_days", 0),
    (call_settings, "max_attempts", 1000),
    (call_settings, "gap_no_answer_minutes", 10**9),
    (call_settings, "gap_escalated_minutes", 44_641),
    (call_settings, "lease_minutes", 0),
    (call_settings, "lease_minutes", 1441),
    (call_settings, "callback_grace_minutes", 10**9),
    (policy, "k", Decimal("999.99")),
    (policy, "at_risk_k", Decimal("10.01")),
    (policy, "default_days", 3651),
    (policy, "max_days", 3_000_000),
    (policy, "attribution_window_days", 3651),
    (policy, "holdout_share", Decimal("0.9")),
])
def test_an_out_of_range_setting_is_refused_by_the_model_and_by_the_database(make, field, value):
    assert_refused(make(**{field: value}), field)


def test_a_policy_whose_shortest_lapse_exceeds_its_longest_is_refused_by_the_database_too():
    assert_refused(policy(min_days=400, max_days=365), "min_days")


def test_the_offers_api_refuses_a_validity_beyond_the_bound_and_creates_nothing(manager):
    # Given a manager on the API
    client = APIClient()
    client.force_authenticate(manager)
    before = Offer.objects.count()
    # When they create an offer valid for 2147483647 days
    response = client.post("/api/offers/", {"name": "Forever", "script": "Always", "code_prefix": "EVER",
                                            "valid_days": 2_147_483_647}, format="json")
    # Then a 400 in the API's error shape names the field, and there is no new offer
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["valid_days"]
    assert Offer.objects.count() == before


def test_an_agent_choosing_an_offer_that_cannot_be_issued_gets_a_400_and_nothing_changes(agent):
    # Given an offer stored before validity was bounded, and a case the agent holds
    bad = legacy_update(OfferFactory(), valid_days=2_147_483_647)
    case = WinbackCase.objects.create(customer=customer_with_orders([], phone="+33612345678"), lapsed_at=BASE,
                                      opened_at=BASE, claimed_by=agent, lease_until=timezone.now() + dt.timedelta(minutes=10))
    client = APIClient()
    client.force_authenticate(agent)
    # When the agent records the call with that offer
    response = client.post(f"/api/cases/{case.pk}/disposition/", {"outcome": "reached_will_return", "offer": bad.pk},
                           format="json")
    # Then a clear error on the offer, and no contact, coupon or disposition; the agent still holds the case
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == ["offer"] and "cannot be issued" in errors[0]["message"]
    assert not Contact.objects.filter(customer=case.customer).exists()
    assert not Coupon.objects.filter(offer=bad).exists() and not Disposition.objects.exists()
    case.refresh_from_db()
    assert (case.claimed_by, case.attempts, case.status) == (agent, 0, "open")


def test_settings_problems_lists_bad_old_rows_and_calling_hours_that_never_open():
    # Given the shipped settings: nothing to report
    assert settings_problems() == []
    # When an old offer, an old policy and the call settings hold what the model refuses today
    legacy_update(OfferFactory(name="Forever"), valid_days=2_147_483_647)
    legacy_update(OfferFactory(name="Retired", active=False), valid_days=0)  # inactive: not in use
    legacy_update(DormancyPolicy.objects.order_by("-id").first(), k=Decimal("999.99"))
    legacy_update(CallSettings.objects.get(pk=1), lease_minutes=100_000, calling_end="08:00")
    # Then each is listed, once, in words
    problems = settings_problems()
    assert len(problems) == 4, problems
    text = "\n".join(problems)
    assert "Offer “Forever”: valid days is 2147483647" in text and "Retired" not in text
    assert "Dormancy policy v" in text and "k is 999.99" in text
    assert "Call settings: lease minutes is 100000" in text and "Calling hours must end after they start" in text


def test_the_admin_shows_the_problems_on_the_settings_pages(client, manager):
    legacy_update(OfferFactory(name="Forever"), valid_days=2_147_483_647)
    client.force_login(manager)
    for url in ("/admin/winback/offer/", "/admin/winback/callsettings/1/change/", "/admin/winback/dormancypolicy/"):
        page = client.get(url).content.decode()
        assert "Offer “Forever”: valid days is 2147483647" in page, url


@pytest.mark.django_db(transaction=True)
def test_the_migration_brings_old_rows_into_range_before_it_adds_the_checks():
    # Given a database before the bounds, with rows a manager could enter then
    with schema_at(("winback", "0007_case_indexes_for_queue_writes")) as old:
        Old = {name: old.get_model("winback", name) for name in ("Offer", "CallSettings", "DormancyPolicy")}
        forever = Old["Offer"].objects.create(name="Forever", script="x", code_prefix="EVER", valid_days=2_147_483_647)
        never = Old["Offer"].objects.create(name="Never", script="x", code_prefix="NEVER", valid_days=0)
        Old["CallSettings"].objects.update_or_create(pk=1, defaults={"lease_minutes": 0, "gap_busy_minutes": 10**9})
        upside_down = Old["DormancyPolicy"].objects.create(k=Decimal("999.99"), min_days=5000, max_days=100)
        # When it is migrated (on leaving the block)
    # Then every value is at the nearest bound, and the checks are in place
    assert Offer.objects.get(pk=forever.pk).valid_days == 3650 and Offer.objects.get(pk=never.pk).valid_days == 1
    calls = CallSettings.objects.get(pk=1)
    assert (calls.lease_minutes, calls.gap_busy_minutes) == (1, 44_640)
    clamped = DormancyPolicy.objects.get(pk=upside_down.pk)
    assert (clamped.k, clamped.min_days, clamped.max_days) == (Decimal("10"), 100, 100)
    assert_refused(Offer(name="Again", script="x", code_prefix="X", valid_days=3651), "valid_days")

