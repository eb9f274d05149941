"""The audit trail and the case events in the admin: browsable by managers, changeable by nobody; the
personal-data actions, gated by their permissions."""

import json

import pytest
from django.test import Client

from crm.models import AuditEntry, Customer
from crm.services.audit import SYSTEM, Actor
from crm.services.customers import customer_create, customer_update
from tests.crm.privacy import KEY, NAME, customer_with_everything
from tests.factories import AuditEntryFactory, CaseEventFactory, UserFactory, WinbackCaseFactory

pytestmark = pytest.mark.django_db
AUDIT = "/admin/crm/auditentry/"


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def actions(page) -> set[str]:
    form = page.context["action_form"]
    return set() if form is None else {name for name, _ in form.fields["action"].choices if name}


def shown(page) -> set[int]:
    return {row.pk for row in page.context["cl"].result_list}


@pytest.fixture
def trail(manager):
    """Two customers; one changed by the manager in the admin, one by an import."""
    ada, _ = customer_create(actor=SYSTEM, data={"external_id": "C-ADA", "name": "Ada"})
    bob, _ = customer_create(actor=Actor(user=None, label="import_csv b.csv"), data={"external_id": "C-BOB", "name": "Bob"})
    customer_update(actor=Actor.of(manager, via="admin"), customer=ada, data={"name": "Ada King"})
    old = AuditEntryFactory(customer=bob, at="2024-03-05T10:00:00+00:00", action="cancel")
    return ada, bob, old


def test_managers_filter_the_trail_by_customer_actor_action_entity_and_period(manager, trail):
    ada, bob, old = trail
    client = logged_in(manager)
    everything = shown(client.get(AUDIT))
    assert len(everything) == AuditEntry.objects.count()
    # By customer (the customer page's link), or their external id in the search box
    by_customer = shown(client.get(AUDIT, {"customer__id__exact": ada.pk}))
    assert by_customer == set(AuditEntry.objects.filter(customer=ada).values_list("pk", flat=True))
    assert shown(client.get(AUDIT, {"q": "C-BOB"})) == set(AuditEntry.objects.filter(customer=bob).values_list("pk", flat=True))
    # By the user who acted, or the label of a system actor
    assert shown(client.get(AUDIT, {"actor__id__exact": manager.pk})) == {
        AuditEntry.objects.get(actor=manager).pk}
    assert shown(client.get(AUDIT, {"q": "import_csv"})) == {
        AuditEntry.objects.get(actor_label="import_csv b.csv").pk}
    # By action and entity
    assert shown(client.get(AUDIT, {"action__exact": "cancel"})) == {old.pk}
    assert shown(client.get(AUDIT, {"entity__exact": "crm.customer", "action__exact": "update"})) == {
        AuditEntry.objects.get(action="update").pk}
    # By period: the date hierarchy, or a from/to range
    assert shown(client.get(AUDIT, {"at__year": "2024"})) == {old.pk}
    assert shown(client.get(AUDIT, {"at__gte": "2024-03-01T00:00:00+00:00", "at__lt": "2024-04-01T00:00:00+00:00"})) == {old.pk}
    assert old.pk not in shown(client.get(AUDIT, {"at__gte": "2025-01-01T00:00:00+00:00"}))


def test_nobody_adds_changes_or_deletes_audit_rows_not_even_a_superuser(trail):
    _, _, row = trail
    root = logged_in(UserFactory(username="root", is_staff=True, is_superuser=True))
    before = list(AuditEntry.objects.values_list("pk", "changes"))
    # The detail page is read-only, the list has no delete action
    detail = root.get(f"{AUDIT}{row.pk}/change/")
    assert detail.status_code == 200 and not detail.context["has_change_permission"]
    assert b'name="_save"' not in detail.content
    assert "delete_selected" not in actions(root.get(AUDIT))
    # Adding, changing and deleting are refused
    assert root.get(f"{AUDIT}add/").status_code == 403
    assert root.post(f"{AUDIT}{row.pk}/change/", {"action": "update", "changes": "{}"}).status_code == 403
    assert root.post(f"{AUDIT}{row.pk}/delete/", {"post": "yes"}).status_code == 403
    assert root.post(AUDIT, {"action": "delete_selected", "_selected_action": [row.pk], "post": "yes"}).status_code in (200, 302)
    assert list(AuditEntry.objects.values_list("pk", "changes")) == before


def test_the_customer_page_links_to_their_audit_trail_and_case_events(manager, trail):
    ada, _, _ = trail
    page = logged_in(manager).get(f"/admin/crm/customer/{ada.pk}/change/")
    assert f'href="{AUDIT}?customer__id__exact={ada.pk}"'.encode() in page.content
    assert b"Audit trail of this customer" in page.content
    assert f"/admin/winback/caseevent/?customer={ada.pk}".encode() in page.content


def test_managers_browse_case_events_by_case_agent_and_period_and_nobody_changes_cases(manager):
    agent = UserFactory(username="caller")
    one, two = WinbackCaseFactory(), WinbackCaseFactory()
    opened = CaseEventFactory(case=one)
    claimed = CaseEventFactory(case=two, kind="claimed", agent=agent, actor="agent")
    client = logged_in(manager)
    events = "/admin/winback/caseevent/"
    assert shown(client.get(events, {"case__id__exact": one.pk})) == {opened.pk}
    assert shown(client.get(events, {"agent__id__exact": agent.pk})) == {claimed.pk}
    assert shown(client.get(events, {"customer": two.customer_id})) == {claimed.pk}
    year = str(opened.at.year)
    assert shown(client.get(events, {"at__year": year})) == {opened.pk, claimed.pk}
    assert client.get(f"{events}{opened.pk}/change/").status_code == 200
    assert client.post(f"{events}{opened.pk}/change/", {"reason": "x"}).status_code == 403
    # A case changes only through the cases module (with its event): its admin page is read-only
    assert client.post(f"/admin/winback/winbackcase/{one.pk}/change/", {"attempts": "0"}).status_code == 403


# --- The personal-data actions ------------------------------------------------------------------------------

def _action(client: Client, action: str, customer: Customer, **extra) -> object:
    return client.post("/admin/crm/customer/", {"action": action, "_selected_action": [customer.pk], **extra})


def test_the_export_action_asks_for_a_reason_then_downloads_one_json_file(manager):
    held = customer_with_everything()
    client = logged_in(manager)
    # When a manager picks "Export personal data": a page asks for the reason
    page = _action(client, "export_personal_data", held.customer)
    assert page.status_code == 200 and b'name="reason"' in page.content
    # A blank reason asks again, and nothing is exported
    again = _action(client, "export_personal_data", held.customer, post="yes", reason=" ")
    assert again.status_code == 200 and not AuditEntry.objects.filter(action="export").exists()
    # With a reason, the file downloads and the export is audited
    download = _action(client, "export_personal_data", held.customer, post="yes", reason="ticket 5")
    assert download["Content-Type"] == "application/json" and "attachment" in download["Content-Disposition"]
    assert json.loads(download.content)["customer"]["external_id"] == KEY
    assert AuditEntry.objects.get(action="export").actor == manager


def test_the_erase_action_confirms_with_a_reason_and_only_for_those_allowed(manager):
    held = customer_with_everything()
    # Managers have both actions; without the permissions (taken from the group here), neither is offered
    client = logged_in(manager)
    assert {"erase_personal_data", "export_personal_data"} <= actions(client.get("/admin/crm/customer/"))
    managers = manager.groups.get()
    granted = list(managers.permissions.filter(codename__in=["erase_customer", "export_customer"]))
    managers.permissions.remove(*granted)
    choices = actions(logged_in(manager).get("/admin/crm/customer/"))
    assert "erase_personal_data" not in choices and "export_personal_data" not in choices
    _action(logged_in(manager), "erase_personal_data", held.customer, post="yes", reason="x")
    assert Customer.objects.get(pk=held.customer.pk).erased_at is None
    managers.permissions.add(*granted)
    # A manager gets a confirmation page; no reason, no erasure
    client = logged_in(manager)
    page = _action(client, "erase_personal_data", held.customer)
    assert page.status_code == 200 and NAME.encode() in page.content and b"Erase for good" in page.content
    _action(client, "erase_personal_data", held.customer, post="yes", reason="")
    assert Customer.objects.get(pk=held.customer.pk).erased_at is None
    # With a reason, the customer is erased, and the message says what was done
    done = _action(client, "erase_personal_data", held.customer, post="yes", reason="ticket 5")
    assert done.status_code == 302
    customer = Customer.objects.get(pk=held.customer.pk)
    assert customer.erased_at is not None and customer.name == "[erased]"
    assert AuditEntry.objects.get(action="erase").actor == manager


def test_integrations_never_get_the_personal_data_permissions(integration, manager):
    assert not integration.has_perm("crm.erase_customer") and not integration.has_perm("crm.export_customer")
    assert manager.has_perm("crm.erase_customer") and manager.has_perm("crm.export_customer")
