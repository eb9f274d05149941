"""Whatever a client sends, the API answers a 4xx in its error shape, never a 500 or an HTML page."""

import json

import pytest
from rest_framework.test import APIClient

from core.services import api_token_create
from crm.models import Customer
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager_api(manager) -> APIClient:
    client = APIClient()
    client.force_authenticate(manager)
    return client


def assert_error_shape(response, status: int) -> dict:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["detail"] and body["errors"] and all({"field", "message"} <= e.keys() for e in body["errors"])
    return body


@pytest.mark.parametrize("url", ["/api/orders/", "/api/customers/", "/api/complaints/"])
def test_a_body_nested_ten_thousand_deep_is_a_400(api, url):
    # Given a JSON body that overflows a recursive parser
    body = "[" * 10_000 + "]" * 10_000
    # When it is posted
    response = api.post(url, body, content_type="application/json")
    # Then it is refused as malformed, nothing is written
    errors = assert_error_shape(response, 400)["errors"]
    assert "nested more than 32 levels" in errors[0]["message"]
    assert not Customer.objects.exists()


def test_a_body_just_past_the_depth_limit_is_refused_and_one_at_it_is_read(api):
    # Given two bodies around the limit: 33 levels, and 32 levels
    too_deep = {"external_id": "C-1", "name": "Ann", "extra": json.loads("[" * 32 + "]" * 32)}
    at_limit = {"external_id": "C-1", "name": "Ann", "extra": json.loads("[" * 31 + "]" * 31)}
    # When each is posted
    refused = api.post("/api/customers/", too_deep, format="json")
    accepted = api.post("/api/customers/", at_limit, format="json")
    # Then only the deeper one is refused (an unknown field is ignored, as before)
    assert "nested more than 32 levels" in assert_error_shape(refused, 400)["errors"][0]["message"]
    assert accepted.status_code == 201, accepted.content


@pytest.mark.parametrize("url, field", [
    ("/api/customers/a%00b/", "path"),
    ("/api/customers/a%00b/lifecycle/", "path"),
    ("/api/customers/?search=%00", "search"),
    ("/api/orders/?ordering=amount%00", "ordering"),
    ("/api/customers/?x%00=1", "x%00"),
])
def test_a_nul_in_the_url_is_a_400_naming_where(manager_api, url, field):
    # Given a customer, so that a lookup would reach the database
    CustomerFactory(external_id="ab")
    # When the URL holds a NUL (PostgreSQL text cannot hold one)
    response = manager_api.get(url)
    # Then it is a clear 400 naming the path or the parameter
    assert [e["field"] for e in assert_error_shape(response, 400)["errors"]] == [field]


def test_a_nul_in_the_token_or_the_session_cookie_is_a_400(manager):
    # Given a real token, and a client that sends a NUL in its credentials
    api_token_create(user=manager)
    bad_token, bad_cookie = APIClient(), APIClient()
    bad_token.credentials(HTTP_AUTHORIZATION="Token a\x00b")
    bad_cookie.cookies["sessionid"] = "abcdefgh\x00ijk"
    # When they call the API, then each gets a 400 naming the header (no database lookup with it)
    assert [e["field"] for e in assert_error_shape(bad_token.get("/api/customers/"), 400)["errors"]] == ["Authorization"]
    assert [e["field"] for e in assert_error_shape(bad_cookie.get("/api/customers/"), 400)["errors"]] == ["Cookie"]


def test_a_body_over_the_upload_limit_is_a_413_in_the_error_shape(api, settings):
    # Given a small upload limit
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000
    # When a JSON body above it is posted
    response = api.post("/api/customers/", {"external_id": "C-1", "name": "x" * 2_000}, format="json")
    # Then it is a 413 in JSON (Django alone answers its HTML 400 page), and nothing is written
    assert "1000 bytes" in assert_error_shape(response, 413)["detail"]
    assert not Customer.objects.exists()


def test_an_api_url_no_route_matches_is_a_json_404(manager_api):
    # Given a case action the routes do not have (its id must be digits)
    # When it is asked for
    response = manager_api.post("/api/cases/1.5/release/")
    # Then the 404 is JSON like every other API answer
    assert assert_error_shape(response, 404)["detail"] == "Not found."


def test_a_page_is_capped_whatever_the_limit(manager_api, monkeypatch):
    # Given three customers and (to keep the test small) a cap of two rows a page
    from core.pagination import Pagination

    monkeypatch.setattr(Pagination, "max_limit", 2)
    CustomerFactory.create_batch(3)
    # When a page far beyond any real size is asked for (more than a database integer holds)
    response = manager_api.get("/api/customers/?limit=100000000000000000000")
    # Then the page is served, capped, and the next page link carries the cap
    assert response.status_code == 200, response.content[:300]
    body = response.json()
    assert (body["count"], len(body["results"])) == (3, 2)
    assert "limit=2" in body["next"]
