import pytest

from crm.models import AuditEntry, Customer

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
