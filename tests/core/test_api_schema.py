"""The API keeps its OpenAPI schema's word on any input: no 5xx, only documented status codes and content
types, and bodies that match the documented schemas. schemathesis generates valid and invalid requests
from /api/schema/ and sends them in-process to the project's WSGI application, as a manager and as an agent,
against rows made by the factories (so that lookups also hit real records, not only 404s)."""

import datetime as dt
import logging
from collections.abc import Iterator

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance, response_schema_conformance, status_code_conformance,
)

from core.services import api_token_create
from crm.models import Complaint
from tests.factories import ComplaintFactory, ContactFactory, CustomerFactory, FeedbackFactory, OrderFactory
from winback.models import Offer, WinbackCase
from winback.services.queue import coupon_issue

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Enough to find the bad inputs of every operation (the generators reach edge cases first) while the module
# stays within a couple of minutes on PostgreSQL.
EXAMPLES = 15


@pytest.fixture
def known_rows(manager, agent) -> dict[str, list[dict]]:
    """A few rows of everything the API reads, including the awkward ones (an empty email, a resolved
    complaint, a case held by the agent, a closed case with its reactivating order), by path prefix."""
    now = timezone.now()
    customers = [CustomerFactory(), CustomerFactory(email=""), CustomerFactory(phone="+33612345678")]
    orders = [OrderFactory(customer=c) for c in customers]
    contacts = [ContactFactory(customer=customers[0], notes="Called back")]
    complaints = [
        ComplaintFactory(customer=customers[0]),
        ComplaintFactory(customer=customers[1], status=Complaint.Status.RESOLVED, resolved_at=now, resolution="Refunded"),
    ]
    feedback = [FeedbackFactory(customer=customers[0])]
    offer = Offer.objects.create(name="Ten off", script="Ten percent off your next order")
    held = WinbackCase.objects.create(
        customer=customers[2], lapsed_at=now - dt.timedelta(days=10), opened_at=now - dt.timedelta(days=9),
        claimed_by=agent, lease_until=now + dt.timedelta(minutes=15),
    )
    won = WinbackCase.objects.create(
        customer=customers[0], lapsed_at=now - dt.timedelta(days=40), opened_at=now - dt.timedelta(days=39),
        status=WinbackCase.Status.WON, closed_at=now, reactivation_order=orders[0],
    )
    coupon = coupon_issue(customer=customers[2], offer=offer, case=held, now=now)
    return {
        "/api/customers/": [{"external_id": c.external_id} for c in customers],
        "/api/orders/": [{"external_id": o.external_id} for o in orders],
        "/api/contacts/": [{"external_id": c.external_id} for c in contacts],
        "/api/complaints/": [{"external_id": c.external_id} for c in complaints],
        "/api/feedback/": [{"external_id": f.external_id} for f in feedback],
        "/api/cases/": [{"id": held.pk}, {"id": won.pk}],
        "/api/offers/": [{"id": offer.pk}],
        "/api/coupons/": [{"code": coupon.code}],
    }


@pytest.fixture(params=["manager", "agent"])
def token(request, manager, agent) -> str:
    user = {"manager": manager, "agent": agent}[request.param]
    return api_token_create(user=user)[1]


@pytest.fixture(autouse=True)
def _no_throttling(settings):
    # Every example comes from one address with one token, faster than any client: the throttles are tested
    # in test_throttling.py. Their 429 is in the schema all the same.
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
        scope: "1000000/min" for scope in settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]}}


# Filled by the known_rows fixture before each test runs; read when the examples are generated.
KNOWN_ROWS: dict[str, list[dict]] = {}


@pytest.fixture(autouse=True)
def _in_process_requests(known_rows) -> Iterator[None]:
    KNOWN_ROWS.clear()
    KNOWN_ROWS.update(known_rows)
    # Django's own test client does the same: the real handler would close the test's connection (and
    # with it the transaction that holds the test data) at the end of every request.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    # Thousands of expected 4xx warnings would only slow the run down; a 5xx is still logged (and fails).
    request_log = logging.getLogger("django.request")
    level = request_log.level
    request_log.setLevel(logging.ERROR)
    yield
    request_log.setLevel(level)
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def _load_schema() -> schemathesis.BaseSchema:
    from config.wsgi import application

    loaded = schemathesis.openapi.from_wsgi("/api/schema/", application)

    @loaded.hook("before_generate_path_parameters")
    def _known_rows_too(context, strategy):
        path = context.operation.path
        rows = next((rows for prefix, rows in KNOWN_ROWS.items() if path.startswith(prefix)), [])
        rows = [row for row in rows if len(row) == path.count("{")]
        return st.one_of(st.sampled_from(rows), strategy) if rows else strategy

    return loaded


schema = _load_schema()


@schema.parametrize()
@settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_the_api_answers_as_its_schema_says(case, token):
    case.call_and_validate(headers={"Authorization": f"Token {token}"}, checks=CHECKS)


def _response_schema(schema: dict, path: str, method: str, code: str = "200") -> dict:
    content = schema["paths"][path][method]["responses"][code]["content"]["application/json"]["schema"]
    if "$ref" in content:
        return schema["components"]["schemas"][content["$ref"].rsplit("/", 1)[-1]]
    return content


def test_the_schema_documents_the_shapes_the_api_answers(db, anon):
    # Given the published schema
    schema = anon.get("/api/schema/?format=json").json()
    # Then the lifecycle is an object with its events, and the callbacks a list
    lifecycle = _response_schema(schema, "/api/customers/{external_id}/lifecycle/", "get")
    assert lifecycle["type"] == "object" and lifecycle["properties"]["events"]["type"] == "array"
    assert _response_schema(schema, "/api/me/callbacks/", "get")["type"] == "array"
    # And a case's or a coupon's missing order is documented as null
    components = schema["components"]["schemas"]
    assert components["Case"]["properties"]["reactivation_order"].get("nullable") is True
    assert components["Coupon"]["properties"]["redeemed_order"].get("nullable") is True
    # And an error answer has the error shape
    error = _response_schema(schema, "/api/orders/", "post", "400")
    assert error["required"] == ["detail"] and error["properties"]["errors"]["type"] == "array"
