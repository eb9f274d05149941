"""The suppression list: an erased person is never contacted again, however they come back."""

import datetime as dt
import io

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from crm.health import suppression_health
from crm.models import AuditEntry, Customer, SuppressionEntry
from crm.services.audit import SYSTEM, Actor
from crm.services.customers import customer_create, customer_do_not_call_clear, customer_update
from crm.services.errors import ProtectedChange
from crm.services.privacy import customer_erase
from crm.services.suppression import suppression_matches
from tests.crm.test_consent_one_way import _admin_form
from tests.crm.privacy import EMAIL, KEY, NAME, PHONE
from tests.factories import UserFactory
from tests.touchpoints.conftest import NOW, make_step, make_touchpoint
from tests.winback.test_queue import NOON_PARIS, open_case
from touchpoints.services.rules import Facts, Limits, touchpoint_decide
from touchpoints.services.sending import touchpoint_send
from winback.services.queue import case_claim_next

pytestmark = pytest.mark.django_db


def erased_person() -> Customer:
    customer, _ = customer_create(actor=SYSTEM, data={"external_id": KEY, "name": NAME, "email": EMAIL, "phone": PHONE})
    return customer_erase(actor=SYSTEM, customer=customer, reason="ticket 9").customer


def assert_never_contacted(customer: Customer) -> None:
    customer.refresh_from_db()
    assert customer.suppressed_at is not None and customer.email_consent == "withdrawn" and customer.do_not_call


def test_only_keyed_hashes_are_listed():
    # Given an erased person
    erased_person()
    # Then the list holds their email, phone and key as HMAC digests, and none of the values
    entries = list(SuppressionEntry.objects.values("kind", "digest", "key_id", "source"))
    assert sorted(e["kind"] for e in entries) == ["email", "external_id", "phone"]
    assert all(len(e["digest"]) == 64 and e["source"] == "erasure" for e in entries)
    assert not any(v.lower() in str(entries).lower() for v in (NAME, EMAIL, PHONE, KEY))
    # And a lookup matches the same values written another way (case, spaces, a formatted number)
    assert suppression_matches(email=f"  {EMAIL.upper()} ", phone="+33 6 12 34 56 78", external_id=KEY) == [
        "email", "external_id", "phone"]
    assert suppression_matches(email="someone.else@example.com") == []


def test_a_customer_created_again_through_the_api_is_suppressed_and_a_repeat_is_not_a_conflict(api):
    # Given an erased person
    erased_person()
    body = {"external_id": "NEW-1", "name": "A. Haddad", "email": EMAIL.lower(), "email_consent": "granted"}
    # When the shop sends them again, asking for consent, twice
    first = api.post("/api/customers/", body, format="json")
    again = api.post("/api/customers/", body, format="json")
    # Then they are created, and kept out of reach: no consent, do-not-call, suppressed; the repeat answers 200
    assert (first.status_code, again.status_code) == (201, 200)
    customer = Customer.objects.get(external_id="NEW-1")
    assert_never_contacted(customer)
    audit = AuditEntry.objects.get(entity="crm.customer", entity_id=customer.pk, action="create")
    assert audit.changes["email_consent"] == "withdrawn" and audit.changes["suppressed_at"]
    # When the shop then turns consent on, even with a newer consent time
    later = (timezone.now() + dt.timedelta(minutes=1)).isoformat()
    answer = api.patch("/api/customers/NEW-1/", {"email_consent": "granted", "email_consent_at": later}, format="json")
    # Then it is refused with the reason, and nothing changed
    assert answer.status_code == 409 and "suppression list" in answer.json()["detail"]
    assert_never_contacted(customer)


def test_a_customer_imported_again_by_phone_is_suppressed_and_the_import_keeps_it_so(tmp_path):
    # Given an erased person
    erased_person()
    path = tmp_path / "customers.csv"
    path.write_text("external_id,name,phone,email_consent\nIMP-1,Amina H,+33 6 12 34 56 78,granted\n", encoding="utf-8")
    # When a CSV import brings them back with a formatted phone number and consent
    call_command("import_csv", "customers", str(path), "--no-progress")
    # Then they are suppressed
    customer = Customer.objects.get(external_id="IMP-1")
    assert_never_contacted(customer)
    out = io.StringIO()
    # When the file is imported again with a newer consent column
    path.write_text("external_id,name,email_consent,email_consent_at\nIMP-1,Amina H,granted,"
                    f"{(timezone.now() + dt.timedelta(minutes=1)).isoformat()}\n", encoding="utf-8")
    call_command("import_csv", "customers", str(path), "--no-progress", stdout=out)
    # Then consent stays off, and the import says it kept it
    assert_never_contacted(customer)
    assert "1 with an opt-out or do-not-call kept" in out.getvalue()


def test_a_customer_added_in_the_admin_with_the_old_key_is_suppressed(manager):
    # Given an erased person, and a manager in the admin
    erased_person()
    client = Client()
    client.force_login(manager)
    # When the manager adds a customer under the erased key
    form = _admin_form(client, "/admin/crm/customer/add/")
    page = client.post("/admin/crm/customer/add/", {**form, "external_id": KEY, "name": "Someone", "locale": "en",
                                                    "email_consent": "granted"})
    # Then the customer is created, suppressed
    assert page.status_code == 302, page.context and page.context["adminform"].form.errors
    assert_never_contacted(Customer.objects.get(external_id=KEY))


def test_do_not_call_of_a_suppressed_customer_cannot_be_cleared(manager):
    # Given a customer suppressed on re-import
    erased_person()
    customer, _ = customer_create(actor=SYSTEM, data={"external_id": "X-1", "name": "X", "phone": PHONE})
    # When a manager tries to clear do-not-call, or an integration to undo it
    with pytest.raises(ValidationError, match="suppression list"):
        customer_do_not_call_clear(actor=Actor.of(manager), customer=customer, reason="asked to be called")
    with pytest.raises(ProtectedChange, match="suppression list"):
        customer_update(actor=SYSTEM, customer=customer, data={"do_not_call": False})
    # Then it stays
    assert_never_contacted(customer)


def test_the_erased_record_cannot_be_filled_in_again(api):
    # Given an erased customer, reachable only by their pseudonym
    erased = erased_person()
    # When someone writes a name and an email onto the record
    answer = api.patch(f"/api/customers/{erased.external_id}/", {"name": NAME, "email": EMAIL}, format="json")
    # Then it is refused and the record stays blank
    assert answer.status_code == 409 and "erased" in answer.json()["detail"]
    erased.refresh_from_db()
    assert (erased.email, erased.name) == ("", "[erased]")


def test_the_sender_stops_even_a_transactional_message_to_a_suppressed_customer():
    # Given a suppressed customer whose consent a bug set back on, and a due order thank-you (transactional)
    erased_person()
    customer, _ = customer_create(actor=SYSTEM, data={"external_id": "T-1", "name": "T", "email": EMAIL})
    Customer.objects.filter(pk=customer.pk).update(email_consent="granted", do_not_call_since=None)
    tp = make_touchpoint(customer, make_step(trigger="order", marketing=False, template="thank_you"))
    # When it is due
    outcome = touchpoint_send(touchpoint_id=tp.pk, now=NOW)
    # Then nothing is sent: it is suppressed as an opt-out
    tp.refresh_from_db()
    assert (outcome, tp.status, tp.reason) == ("suppressed", "suppressed", "opted_out")


def test_the_rules_put_the_suppression_list_before_everything():
    facts = Facts(channel="email", trigger="order", marketing=False, discount=False, enabled=True, anchor_at=NOW,
                  due_at=NOW, email="x@example.com", phone="", consent="granted", do_not_call=False,
                  status="active", last_order_at=None, order_count=1, total_spent=0, call_zones="UTC",
                  holdout_case=False, case_being_worked=False, open_complaint=False, recent_touches=0,
                  suppressed=True)
    limits = Limits(cap_count=2, cap_days=7, transactional_exempt=True, quiet_start=dt.time(21),
                    quiet_end=dt.time(8), stale_after=dt.timedelta(hours=48))
    decision = touchpoint_decide(facts=facts, limits=limits, now=NOW)
    assert (decision.action, decision.reason) == ("suppress", "opted_out")


def test_the_call_queue_never_offers_a_suppressed_customer():
    # Given a callable case whose customer is suppressed but (by a bug) not on do-not-call
    case = open_case(priority=500)
    Customer.objects.filter(pk=case.customer_id).update(suppressed_at=timezone.now(), do_not_call_since=None)
    # When an agent asks for the next customer
    # Then nobody is offered
    assert case_claim_next(agent=UserFactory(), now=NOON_PARIS) is None


def test_a_rotated_key_keeps_matching_while_the_old_key_is_kept_and_health_says_when_it_is_not(settings):
    # Given a person listed under the first key
    settings.SUPPRESSION_HASH_KEY = "first-key"
    erased_person()
    # When the key is rotated and the old one kept for lookups
    settings.SUPPRESSION_HASH_KEY, settings.SUPPRESSION_HASH_OLD_KEYS = "second-key", ["first-key"]
    # Then the person still matches, and health is fine
    assert suppression_matches(email=EMAIL) == ["email"]
    assert suppression_health(now=timezone.now())[1] is True
    # When the old key is dropped
    settings.SUPPRESSION_HASH_OLD_KEYS = []
    # Then nothing matches any more, and /health/ says why
    assert suppression_matches(email=EMAIL) == []
    name, ok, detail = suppression_health(now=timezone.now())
    assert (name, ok, detail["entries_with_unknown_key"]) == ("suppression_list", False, 3)


def test_the_default_key_follows_secret_key_fallbacks(settings):
    # Given a person listed under the key derived from SECRET_KEY
    settings.SUPPRESSION_HASH_KEY = ""
    erased_person()
    # When SECRET_KEY is rotated the Django way (the old one in SECRET_KEY_FALLBACKS)
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-brand-new-secret-key-" + "x" * 40
    # Then the person still matches
    assert suppression_matches(phone=PHONE) == ["phone"]
