import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from tests.winback.conftest import day
from tests.winback.test_queue import open_case
from winback.models import Disposition, WinbackCase
from winback.services.lifecycle import lifecycle_scan

pytestmark = pytest.mark.django_db


def test_lifecycle_endpoint_lists_the_events_with_their_definition(api, make_customer):
    customer = make_customer([0])
    lifecycle_scan(full=True, now=day(100))
    response = api.get(f"/api/customers/{customer.external_id}/lifecycle/")
    assert response.status_code == 200
    assert [e["kind"] for e in response.data["events"]] == ["acquired", "at_risk", "lapsed"]
    assert response.data["status"] == "lapsed"
    assert "docs/metrics.md" in response.data["definition"]
    assert api.get("/api/customers/NOPE/lifecycle/").status_code == 404


def test_managers_see_all_cases_and_an_agent_only_their_own(anon, agent, manager, make_customer):
    make_customer([0])
    lifecycle_scan(full=True, now=day(100))
    assert anon.get("/api/cases/").status_code == 401
    client = APIClient()
    client.force_authenticate(agent)
    assert client.get("/api/cases/").data["count"] == 0  # holds none
    client.force_authenticate(manager)
    response = client.get("/api/cases/?status=open")
    assert response.status_code == 200 and response.data["count"] == 1


def test_admin_shows_events_on_the_customer_page_and_filters_cases(client, manager, make_customer):
    customer = make_customer([0])
    lifecycle_scan(full=True, now=day(100))
    client.force_login(manager)
    page = client.get(f"/admin/crm/customer/{customer.pk}/change/").content.decode()
    assert "lifecycle events" in page.lower() and "Lapsed" in page
    for query in ("", "?status__exact=open", "?holdout__exact=1", "?is_recovery__exact=0", "?age=old"):
        assert client.get(f"/admin/winback/winbackcase/{query}").status_code == 200
    assert client.get("/admin/winback/dormancypolicy/add/").status_code == 200
    for model in ("callsettings", "leavereason", "offer", "coupon", "disposition", "lifecyclescanstate"):
        assert client.get(f"/admin/winback/{model}/").status_code == 200


def book_callback(agent, *, tz: str, callback_at: str):
    """An open case of a customer in ``tz`` held by ``agent``, and the answer to booking a callback on it
    (``{tomorrow}`` in callback_at stands for tomorrow's date)."""
    case = open_case(tz=tz)
    WinbackCase.objects.filter(pk=case.pk).update(claimed_by=agent, lease_until=timezone.now() + dt.timedelta(minutes=15))
    client = APIClient()
    client.force_authenticate(agent)
    response = client.post(f"/api/cases/{case.pk}/disposition/", {
        "outcome": "callback_requested", "callback_at": callback_at.format(tomorrow=tomorrow())}, format="json")
    return case, response


def tomorrow() -> str:
    return (timezone.now() + dt.timedelta(days=1)).date().isoformat()


def test_a_callback_with_an_offset_keeps_its_instant_and_one_without_is_the_customers_local_time(agent):
    # Given an agent and customers in Tokyo (UTC+9, no DST)
    # When callbacks are booked for 03:00 UTC tomorrow, noon in Tokyo: as an instant, with another offset,
    # and as Tokyo's wall clock
    written = ["{tomorrow}T03:00:00Z", "{tomorrow}T08:00:00+05:00", "{tomorrow}T12:00"]
    booked = [book_callback(agent, tz="Asia/Tokyo", callback_at=w) for w in written]
    # Then each is at that instant (an offset is never dropped and read as Tokyo time)
    assert [response.status_code for _, response in booked] == [200, 200, 200], [r.content[:200] for _, r in booked]
    noon_in_tokyo = dt.datetime.fromisoformat(f"{tomorrow()}T03:00:00+00:00")
    assert [WinbackCase.objects.get(pk=case.pk).callback_at for case, _ in booked] == [noon_in_tokyo] * 3


@pytest.mark.parametrize("callback_at, reason", [
    ("9999-12-31T12:00", "at most one year ahead"), ("0001-01-01T12:00", "on or after 1970-01-01"),
    ("{tomorrow}T12:00:00+16:00", "outside -15:59..+15:59"),
])
def test_a_callback_time_out_of_range_is_a_400_that_records_nothing(agent, callback_at, reason):
    # Given an agent holding a case
    # When the callback time is outside any business instant (year 1 or 9999, an offset past +-15:59)
    _, response = book_callback(agent, tz="Europe/Paris", callback_at=callback_at)
    # Then it is a clear 400 on callback_at saying which bound, and no call is recorded
    assert response.status_code == 400, response.content[:300]
    assert [e["field"] for e in response.data["errors"]] == ["callback_at"]
    assert reason in response.data["errors"][0]["message"]
    assert not Disposition.objects.exists()


def test_an_out_of_range_case_date_filter_is_a_400(manager, make_customer):
    # Given a manager and a case
    make_customer([0])
    lifecycle_scan(full=True, now=day(100))
    client = APIClient()
    client.force_authenticate(manager)
    # When cases are filtered by an instant with an offset past +-15:59
    response = client.get("/api/cases/?opened_after=2024-01-01T00:00:00%2B16:00")
    # Then it is a 400 naming the filter
    assert response.status_code == 400, response.content[:300]
    assert [e["field"] for e in response.data["errors"]] == ["opened_after"]
