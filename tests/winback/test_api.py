import pytest
from rest_framework.test import APIClient

from tests.winback.conftest import day
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
