"""Who sees what: agent vs agent vs manager vs anonymous, on every queue page and endpoint."""

import datetime as dt
import zoneinfo

import pytest
from django.utils import timezone
from django.contrib.auth.models import Group
from django.test import Client
from rest_framework.test import APIClient

from tests.factories import UserFactory
from tests.winback.test_queue import open_case
from winback.models import WinbackCase
from winback.services.queue import DispositionInput, case_claim_next, case_record_disposition

pytestmark = pytest.mark.django_db
# Pages and the API run on the real clock: put the customers where it is mid-day now, whenever CI runs.
AROUND_THE_WORLD = ["Pacific/Kiritimati", "Asia/Tokyo", "Asia/Dhaka", "Asia/Dubai", "Europe/Paris",
                    "Atlantic/Cape_Verde", "America/Sao_Paulo", "America/New_York", "America/Denver",
                    "Pacific/Honolulu", "Pacific/Pago_Pago"]


def daytime_zone() -> str:
    now = timezone.now()
    return next(z for z in AROUND_THE_WORLD if 10 <= now.astimezone(zoneinfo.ZoneInfo(z)).hour < 18)


def case_now(priority: int):
    return open_case(priority=priority, tz=daytime_zone(), lapsed_at=timezone.now() - dt.timedelta(days=10),
                     opened_at=timezone.now() - dt.timedelta(days=9))


@pytest.fixture
def people(manager):
    agents = Group.objects.get(name="Agents")
    a, b = UserFactory(username="alice"), UserFactory(username="bob")
    a.groups.add(agents)
    b.groups.add(agents)
    outsider = UserFactory(username="outsider")  # logged in, but neither agent nor manager
    return {"a": a, "b": b, "manager": manager, "outsider": outsider}


@pytest.fixture
def held(people):
    """Alice holds one case and has booked a callback on another; Bob holds a third."""
    mine, callback, bobs = case_now(3), case_now(2), case_now(1)
    assert case_claim_next(agent=people["a"]) == mine
    tomorrow_noon = (timezone.now().astimezone(zoneinfo.ZoneInfo(mine.customer.call_zones)) + dt.timedelta(days=1)).replace(hour=12, minute=0)
    case_record_disposition(agent=people["a"], case_id=mine.pk, data=DispositionInput(
        outcome="callback_requested", callback_local=tomorrow_noon.replace(tzinfo=None)))
    assert case_claim_next(agent=people["a"]) == callback
    WinbackCase.objects.filter(pk=bobs.pk).update(claimed_by=people["b"], lease_until=dt.datetime(2099, 1, 1, tzinfo=dt.timezone.utc), ready=False)
    return {"booked": mine, "held": callback, "bobs": bobs}


def page(user):
    client = Client()
    if user:
        client.force_login(user)
    return client


def api(user):
    client = APIClient()
    if user:
        client.force_authenticate(user)
    return client


def test_anonymous_gets_nothing(held):
    c = page(None)
    for url in ("/agent/", "/agent/callbacks/", f"/agent/case/{held['held'].pk}/"):
        assert c.get(url).status_code == 302 and "/accounts/login/" in c.get(url)["Location"]
    assert c.post("/agent/next/").status_code == 302
    a = api(None)
    assert a.post("/api/queue/next/").status_code == 401
    assert a.post(f"/api/cases/{held['held'].pk}/disposition/", {"outcome": "busy"}).status_code == 401
    assert a.post(f"/api/cases/{held['held'].pk}/release/").status_code == 401
    assert a.get("/api/me/callbacks/").status_code == 401
    assert a.get("/api/cases/").status_code == 401
    assert a.get("/api/offers/").status_code == 401


def test_an_agent_sees_only_the_case_they_hold_and_their_callbacks(people, held):
    alice = page(people["a"])
    assert alice.get(f"/agent/case/{held['held'].pk}/").status_code == 200
    assert alice.get(f"/agent/case/{held['bobs'].pk}/").status_code == 404  # Bob's
    assert alice.get(f"/agent/case/{held['booked'].pk}/").status_code == 404  # booked, not held now
    assert held["booked"].customer.name in alice.get("/agent/callbacks/").content.decode()
    client = api(people["a"])
    listed = {c["id"] for c in client.get("/api/cases/").data["results"]}
    assert listed == {held["held"].pk, held["booked"].pk}
    assert client.get(f"/api/cases/{held['bobs'].pk}/").status_code == 404
    assert client.post(f"/api/cases/{held['bobs'].pk}/disposition/", {"outcome": "busy"}, format="json").status_code == 404
    assert client.post(f"/api/cases/{held['bobs'].pk}/release/").status_code == 404
    assert [c["case"] for c in client.get("/api/me/callbacks/").data] == [held["booked"].pk]
    assert client.get("/api/offers/").status_code == 403 and client.get("/api/coupons/").status_code == 403
    # Bob cannot touch Alice's case either, and sees none of her callbacks.
    bob = api(people["b"])
    assert bob.post(f"/api/cases/{held['held'].pk}/disposition/", {"outcome": "busy"}, format="json").status_code == 404
    assert page(people["b"]).get(f"/agent/case/{held['held'].pk}/").status_code == 404
    assert bob.get("/api/me/callbacks/").data == []


def test_a_manager_sees_everything(people, held):
    client = api(people["manager"])
    assert client.get("/api/cases/").data["count"] == 3
    assert client.get(f"/api/cases/{held['bobs'].pk}/").status_code == 200
    assert client.get("/api/offers/").status_code == 200 and client.get("/api/coupons/").status_code == 200
    created = client.post("/api/offers/", {"name": "Half price", "script": "50% off", "code_prefix": "HALF", "valid_days": 14}, format="json")
    assert created.status_code == 201
    assert page(people["manager"]).get("/agent/").status_code == 200


def test_someone_who_is_neither_agent_nor_manager_is_refused(people, held):
    assert page(people["outsider"]).get("/agent/").status_code == 403
    assert api(people["outsider"]).post("/api/queue/next/").status_code == 403
    assert api(people["outsider"]).get("/api/cases/").status_code == 403


def test_the_page_flow_records_a_call_and_offers_the_next_customer(people):
    first, second = case_now(2), case_now(1)
    from winback.models import Offer
    alice = page(people["a"])
    response = alice.post("/agent/next/")
    assert response["Location"] == f"/agent/case/{first.pk}/"
    card = alice.get(response["Location"]).content.decode()
    assert first.customer.name in card and "Call guide" in card and "+33612345678" in card
    offer = Offer.objects.get(code_prefix="BACK10")
    done = alice.post(f"/agent/case/{first.pk}/", {"outcome": "reached_will_return", "offer": offer.pk, "note": "Will order Friday"}, follow=True)
    text = done.content.decode()
    assert done.redirect_chain[-1][0] == f"/agent/case/{second.pk}/"
    assert "Coupon for" in text and "BACK10-" in text
    bad = alice.post(f"/agent/case/{second.pk}/", {"outcome": "callback_requested"})
    assert bad.status_code == 200 and "A callback needs a date and time." in bad.content.decode()


def test_the_api_flow(people):
    case = case_now(2)
    client = api(people["a"])
    card = client.post("/api/queue/next/")
    assert card.status_code == 200 and card.data["case"]["id"] == case.pk
    assert card.data["customer"]["phone"] == "+33612345678" and card.data["call_guide"]
    bad = client.post(f"/api/cases/{case.pk}/disposition/", {"outcome": "sleeping"}, format="json")
    assert bad.status_code == 400 and bad.data["errors"][0]["field"] == "outcome"
    ok = client.post(f"/api/cases/{case.pk}/disposition/", {"outcome": "no_answer", "note": "rang out"}, format="json")
    assert ok.status_code == 200 and ok.data["outcome"] == "no_answer"
    assert client.post("/api/queue/next/").status_code == 204
