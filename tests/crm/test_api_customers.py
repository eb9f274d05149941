import pytest
from django.utils import timezone

from crm.models import AuditEntry, Complaint, Customer
from tests.factories import ComplaintFactory, CustomerFactory

pytestmark = pytest.mark.django_db

ANN = {"external_id": "C-1", "name": "Ann Lee", "email": "ann@example.com", "phone": "+44 20 7946 0958"}


def test_create_read_update_and_cancel_a_customer(api):
    created = api.post("/api/customers/", ANN, format="json")
    assert created.status_code == 201, created.data
    assert created.data["phone"] == "+442079460958"
    assert created.data["timezone"] == "Europe/London"
    assert created.data["status"] == "prospect"
    assert {"order_count", "last_order_at", "total_spent", "status"} <= created.data.keys()

    assert api.get("/api/customers/C-1/").data["name"] == "Ann Lee"

    patched = api.patch("/api/customers/C-1/", {"name": "Ann Smith", "do_not_call": True}, format="json")
    assert patched.status_code == 200
    assert patched.data["do_not_call"] is True and patched.data["do_not_call_since"]

    cancelled = api.post("/api/customers/C-1/cancel/", {"cancelled_at": "2025-06-01T00:00:00Z"}, format="json")
    assert cancelled.status_code == 200
    assert cancelled.data["status"] == "cancelled"
    actions = list(AuditEntry.objects.filter(entity="crm.customer").order_by("id").values_list("action", flat=True))
    assert actions == ["create", "update", "cancel"]
    update = AuditEntry.objects.get(entity="crm.customer", action="update")
    assert update.changes["name"] == ["Ann Lee", "Ann Smith"]
    assert update.actor_label == "shop-integration via api"


def test_posting_the_same_customer_again_is_idempotent_and_different_data_conflicts(api):
    assert api.post("/api/customers/", ANN, format="json").status_code == 201
    assert api.post("/api/customers/", ANN, format="json").status_code == 200
    conflict = api.post("/api/customers/", {**ANN, "name": "Someone Else"}, format="json")
    assert conflict.status_code == 409
    assert "name" in conflict.data["detail"]
    assert Customer.objects.get().name == "Ann Lee"


def test_invalid_customer_gets_field_errors(api):
    response = api.post("/api/customers/", {"external_id": "C-9", "name": "X", "phone": "not-a-phone", "timezone": "Foo/Bar"}, format="json")
    assert response.status_code == 400
    fields = {e["field"] for e in response.data["errors"]}
    assert "phone" in fields or "timezone" in fields
    assert not Customer.objects.exists()


def test_list_filters_and_paginates(api):
    for i in range(3):
        api.post("/api/customers/", {"external_id": f"C-{i}", "name": f"N{i}"}, format="json")
    Customer.objects.filter(external_id="C-1").update(status="lapsed")
    page = api.get("/api/customers/?limit=2")
    assert page.data["count"] == 3 and len(page.data["results"]) == 2 and page.data["next"]
    lapsed = api.get("/api/customers/?status=lapsed")
    assert [c["external_id"] for c in lapsed.data["results"]] == ["C-1"]


def test_complaint_lifecycle_through_the_api(api):
    api.post("/api/customers/", ANN, format="json")
    created = api.post("/api/complaints/", {"customer": "C-1", "opened_at": "2025-01-01T09:00:00Z", "summary": "Late", "category": "delivery"}, format="json")
    assert created.status_code == 201, created.data
    key = created.data["external_id"]
    resolved = api.patch(f"/api/complaints/{key}/", {"status": "resolved", "resolution": "Refunded shipping"}, format="json")
    assert resolved.status_code == 200
    assert resolved.data["resolved_at"] is not None
    bad = api.post("/api/feedback/", {"customer": "C-1", "kind": "csat", "score": 9, "responded_at": "2025-01-02T00:00:00Z"}, format="json")
    assert bad.status_code == 400
    assert bad.data["errors"][0]["field"] == "score"


@pytest.mark.parametrize("url, payload, field", [
    ("/api/customers/", {**ANN, "acquired_at": "9999-12-31T23:59:59Z"}, "acquired_at"),
    ("/api/customers/", {**ANN, "email_consent": "granted", "email_consent_at": "0001-01-01T00:00:00Z"}, "email_consent_at"),
    ("/api/customers/C-0/cancel/", {"cancelled_at": "1969-12-31T23:59:59Z"}, "cancelled_at"),
    ("/api/contacts/", {"customer": "C-0", "channel": "call", "occurred_at": "2999-01-01T00:00:00Z"}, "occurred_at"),
    ("/api/complaints/", {"customer": "C-0", "summary": "Late", "opened_at": "1969-07-20T20:17:00-04:00"}, "opened_at"),
    ("/api/feedback/", {"customer": "C-0", "kind": "nps", "score": 9, "responded_at": "1900-01-01T00:00:00Z"}, "responded_at"),
])
def test_an_instant_outside_the_business_range_is_a_400_that_writes_nothing(api, url, payload, field):
    # Given a customer
    CustomerFactory(external_id="C-0")
    audit_before = AuditEntry.objects.count()
    # When a record or a change is posted with an instant outside 1970 .. a year ahead
    response = api.post(url, payload, format="json")
    # Then it is refused, naming the field, and nothing is written
    assert response.status_code == 400, response.content[:300]
    assert [e["field"] for e in response.data["errors"]] == [field]
    assert "1970" in response.data["errors"][0]["message"] or "one year" in response.data["errors"][0]["message"]
    assert (Customer.objects.count(), AuditEntry.objects.count()) == (1, audit_before)
    assert Customer.objects.get().status != "cancelled"


@pytest.mark.parametrize("url, field", [
    ("/api/contacts/", "notes"), ("/api/complaints/", "summary"), ("/api/complaints/", "resolution"),
    ("/api/feedback/", "comment"),
])
def test_a_megabyte_of_text_in_a_note_is_refused(api, url, field):
    # Given a customer and a valid record
    CustomerFactory(external_id="C-0")
    record = {"/api/contacts/": {"channel": "call", "occurred_at": "2025-01-01T00:00:00Z"},
              "/api/complaints/": {"summary": "Late", "opened_at": "2025-01-01T00:00:00Z"},
              "/api/feedback/": {"kind": "nps", "score": 9, "responded_at": "2025-01-01T00:00:00Z"}}[url]
    # When one of its free-text fields holds a megabyte
    response = api.post(url, {"customer": "C-0", **record, field: "x" * 1_000_000}, format="json")
    # Then it is refused with the field named, and nothing is written
    assert response.status_code == 400, response.content[:300]
    assert response.data["errors"] == [{"field": field, "message": "Ensure this field has no more than 10000 characters."}]
    assert not AuditEntry.objects.filter(action="create").exclude(entity="crm.customer").exists()


def test_unsetting_the_resolution_date_of_a_resolved_complaint_is_a_400_that_changes_nothing(api):
    # Given a resolved complaint
    complaint = ComplaintFactory(status=Complaint.Status.RESOLVED, resolved_at=timezone.now(), resolution="Refunded")
    before = (complaint.status, complaint.resolved_at, complaint.resolution)
    # When its resolution date is set to null
    response = api.patch(f"/api/complaints/{complaint.external_id}/", {"resolved_at": None}, format="json")
    # Then it is a clear 400 on resolved_at, and the complaint is as it was
    assert response.status_code == 400, response.content[:300]
    assert [e["field"] for e in response.data["errors"]] == ["resolved_at"]
    assert "reopen" in response.data["errors"][0]["message"]
    complaint.refresh_from_db()
    assert (complaint.status, complaint.resolved_at, complaint.resolution) == before
    assert not AuditEntry.objects.filter(entity="crm.complaint").exists()
    # And reopening it with its date cleared is still possible
    reopened = api.patch(f"/api/complaints/{complaint.external_id}/", {"status": "open", "resolved_at": None}, format="json")
    assert reopened.status_code == 200 and reopened.data["resolved_at"] is None


@pytest.mark.postgres
@pytest.mark.parametrize("field, value", [("customer", "C-\x000"), ("owner", "ma\x00nager")])
def test_a_nul_in_a_key_of_the_body_is_a_400_on_postgresql(api, field, value):
    # Given a customer
    CustomerFactory(external_id="C-0")
    # When a complaint names its customer or owner with a key holding a NUL (PostgreSQL text cannot)
    payload = {"customer": "C-0", "summary": "Late", "opened_at": "2025-01-01T00:00:00Z", field: value}
    response = api.post("/api/complaints/", payload, format="json")
    # Then it is not found, a 400 naming the field, instead of a database error
    assert response.status_code == 400, response.content[:300]
    assert [e["field"] for e in response.data["errors"]] == [field]
    assert not Complaint.objects.exists()


def test_an_empty_email_is_answered_as_the_schema_documents_it(api):
    # Given a customer without an email address
    CustomerFactory(external_id="C-0", email="")
    # When it is read, then its email is the empty string
    assert api.get("/api/customers/C-0/").data["email"] == ""
    # And the schema documents Customer.email as a string that may be empty, not format "email"
    schema = api.get("/api/schema/?format=json").json()
    email = schema["components"]["schemas"]["Customer"]["properties"]["email"]
    assert email["type"] == "string" and "format" not in email
