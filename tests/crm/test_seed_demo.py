import datetime as dt
import io
import statistics
from collections import defaultdict
from decimal import Decimal

import phonenumbers
import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db.models import Count, Max, Min, Sum
from django.utils import timezone

from crm.models import AuditEntry, Complaint, Contact, Customer, Feedback, Order
from crm.services.demo_data import DEMO_LOGINS
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

UNTIL = dt.date(2025, 6, 30)  # in the past, so no cancellation is "future-dated" by the wall clock
CUSTOMER_COLUMNS = [
    "external_id", "name", "email", "phone", "timezone", "locale", "acquired_at", "cancelled_at", "status",
    "email_consent", "email_consent_at", "email_consent_source", "do_not_call_since", "last_order_at",
    "order_count", "total_spent",
]


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # The demo logins hash two passwords per seed; the default hasher is deliberately slow.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def seed_demo(*args: str) -> str:
    out = io.StringIO()
    call_command("seed_demo", "--until", UNTIL.isoformat(), "--no-progress", *args, stdout=out)
    return out.getvalue()


def snapshot() -> dict[str, list[tuple]]:
    """Everything the seeder decides, without pks and auto timestamps, in a stable order."""
    return {
        "customers": list(Customer.objects.order_by("external_id").values_list(*CUSTOMER_COLUMNS)),
        "orders": list(Order.objects.order_by("external_id").values_list(
            "external_id", "customer__external_id", "ordered_at", "amount", "currency", "coupon_code")),
        "complaints": list(Complaint.objects.order_by("external_id").values_list(
            "external_id", "customer__external_id", "opened_at", "category", "severity", "summary", "status",
            "resolved_at", "resolution", "owner__username")),
        "feedback": list(Feedback.objects.order_by("external_id").values_list(
            "external_id", "customer__external_id", "kind", "score", "comment", "responded_at")),
        "contacts": list(Contact.objects.order_by("external_id").values_list(
            "external_id", "customer__external_id", "channel", "direction", "occurred_at", "agent__username",
            "outcome", "notes")),
    }


def delete_all_crm_rows() -> None:
    # Referencing models first (the foreign keys PROTECT), without naming them all here.
    remaining = set(apps.get_app_config("crm").get_models())
    while remaining:
        referenced = {f.related_model for m in remaining for f in m._meta.fields if f.is_relation and f.related_model is not m}
        leaves = remaining - referenced
        assert leaves, f"a reference cycle among {remaining}"
        for model in leaves:
            model.objects.all().delete()
        remaining -= leaves


def anchor() -> dt.datetime:
    return dt.datetime.combine(UNTIL, dt.time(0), tzinfo=timezone.get_default_timezone())


def test_the_same_seed_and_anchor_give_the_same_data_and_another_seed_does_not():
    # Given a first demo data set
    seed_demo("--seed", "7", "--customers", "200")
    first = snapshot()
    assert len(first["customers"]) == 200
    assert all(first[k] for k in ("orders", "complaints", "feedback", "contacts"))

    # When the database is emptied and the same seed is loaded again
    delete_all_crm_rows()
    seed_demo("--seed", "7", "--customers", "200")

    # Then every row is the same, down to the timestamps and amounts
    assert snapshot() == first

    # And another seed gives other customers, orders and amounts
    delete_all_crm_rows()
    seed_demo("--seed", "8", "--customers", "200")
    other = snapshot()
    assert other["customers"] != first["customers"]
    assert other["orders"] != first["orders"]


def test_a_demo_data_set_has_the_behaviours_the_lifecycle_engine_and_kpis_must_handle():
    # Given 500 demo customers
    output = seed_demo("--seed", "42", "--customers", "500")

    # Then the summary line states the counts
    assert f"Seeded 500 customers, {Order.objects.count()} orders" in output

    times: dict[int, list[dt.datetime]] = defaultdict(list)
    for customer_id, at in Order.objects.order_by("ordered_at").values_list("customer_id", "ordered_at"):
        times[customer_id].append(at)
    day = dt.timedelta(days=1)
    mean_gaps = [(t[-1] - t[0]) / (len(t) - 1) / day for t in times.values() if len(t) >= 3]
    longest_gap = {c: max((b - a for a, b in zip(t, t[1:])), default=dt.timedelta(0)) for c, t in times.items()}
    last_order = {c: t[-1] for c, t in times.items()}

    # Individual rhythms: one-time, weekly-ish and quarterly-ish buyers
    assert sum(len(t) == 1 for t in times.values()) >= 25
    assert sum(g < 10 for g in mean_gaps) >= 10
    assert sum(g > 60 for g in mean_gaps) >= 10
    # Lapsed (nothing in the last 180 days) and lapsed-then-returned customers
    lapsed = {c for c, t in last_order.items() if t < anchor() - 180 * day}
    assert len(lapsed) >= 50
    assert sum(g > 180 * day for g in longest_gap.values()) >= 10
    # Nothing happens on or after the anchor
    assert max(last_order.values()) < anchor()
    assert Complaint.objects.filter(opened_at__gte=anchor()).count() == 0
    assert Complaint.objects.filter(resolved_at__gte=anchor()).count() == 0
    assert Feedback.objects.filter(responded_at__gte=anchor()).count() == 0
    assert Contact.objects.filter(occurred_at__gte=anchor()).count() == 0

    # Complaints in every state, feedback of every kind; lapsers complain more and score lower
    assert set(Complaint.objects.values_list("status", flat=True)) == {"open", "in_progress", "resolved"}
    assert Complaint.objects.values("category").distinct().count() >= 4
    assert set(Feedback.objects.values_list("kind", flat=True)) == {"nps", "csat", "ces"}
    complained = set(Complaint.objects.values_list("customer_id", flat=True))
    active = set(times) - lapsed
    assert len(complained & lapsed) / len(lapsed) > 2 * len(complained & active) / len(active)
    nps = defaultdict(list)
    for customer_id, score in Feedback.objects.filter(kind="nps").values_list("customer_id", "score"):
        nps[customer_id in lapsed].append(score)
    detractor_share = {k: sum(s <= 6 for s in v) / len(v) for k, v in nps.items()}
    assert detractor_share[True] > detractor_share[False] + 0.2

    # Baskets differ from customer to customer
    per_customer = Customer.objects.filter(order_count__gt=0).annotate(avg=Sum("orders__amount") / Count("orders"))
    averages = [float(c.avg) for c in per_customer]
    assert statistics.pstdev(averages) > 0.3 * statistics.mean(averages)
    assert set(Order.objects.values_list("currency", flat=True)) == {"EUR"}

    # Contact details: valid E.164 numbers from several countries, mostly English with an Arabic share
    customers = list(Customer.objects.all())
    phones = [phonenumbers.parse(c.phone) for c in customers if c.phone]
    assert all(phonenumbers.is_valid_number(p) for p in phones)
    assert {"GB", "US", "FR", "DE", "AE"} <= {phonenumbers.region_code_for_number(p) for p in phones}
    assert any(c.timezone == "Asia/Dubai" for c in customers if c.phone.startswith("+971"))
    locales = [c.locale for c in customers]
    assert locales.count("en") > len(locales) / 2
    assert locales.count("ar") >= 25
    assert {c.email_consent for c in customers} == {"granted", "relationship", "unknown", "withdrawn"}
    assert any(c.do_not_call for c in customers)
    assert all(c.email.endswith(("@example.com", "@example.net", "@example.org")) for c in customers if c.email)

    # The denormalised figures match the orders, as the order service keeps them
    figures = Customer.objects.annotate(
        n=Count("orders"), s=Sum("orders__amount"), first=Min("orders__ordered_at"), last=Max("orders__ordered_at")
    )
    for c in figures:
        assert (c.order_count, c.total_spent, c.acquired_at, c.last_order_at) == (
            c.n, c.s or Decimal("0"), c.first, c.last
        ), c.external_id
    assert {c.status for c in customers if c.order_count == 0} == {"prospect"}
    cancelled = [c for c in customers if c.status == "cancelled"]
    assert cancelled and all(c.cancelled_at > c.last_order_at for c in cancelled)

    # Every record has its audit row, by the seeder
    for model, entity in ((Customer, "crm.customer"), (Order, "crm.order"), (Complaint, "crm.complaint"),
                          (Feedback, "crm.feedback"), (Contact, "crm.contact")):
        audited = AuditEntry.objects.filter(entity=entity, action="create", actor_label="seed_demo")
        assert audited.count() == model.objects.count(), entity


def test_if_empty_does_nothing_when_customers_exist():
    # Given a database with one customer
    CustomerFactory(external_id="REAL-1")

    # When the demo is seeded with --if-empty
    output = seed_demo("--customers", "20", "--if-empty")

    # Then nothing is written, and the command says so
    assert "nothing seeded" in output
    assert list(Customer.objects.values_list("external_id", flat=True)) == ["REAL-1"]
    assert not Order.objects.exists()
    assert not get_user_model().objects.filter(username__in=[u for u, _, _ in DEMO_LOGINS]).exists()


def test_if_empty_seeds_an_empty_database_and_a_second_plain_run_is_refused():
    # Given an empty database, seeded with --if-empty
    seed_demo("--customers", "20", "--if-empty")
    assert Customer.objects.count() == 20
    orders = Order.objects.count()

    # When seeded again without --if-empty
    with pytest.raises(CommandError, match="Demo customers .* already exist"):
        seed_demo("--customers", "20")

    # Then nothing changed
    assert (Customer.objects.count(), Order.objects.count()) == (20, orders)


def _log_in(client, username: str, password: str) -> bool:
    response = client.post("/accounts/login/", {"username": username, "password": password})
    return response.status_code == 302 and "_auth_user_id" in client.session


def test_demo_logins_let_the_manager_into_the_admin_but_not_the_agent(client):
    # Given the demo logins, created twice (the second run resets a changed password)
    (manager_name, manager_password, _), (agent_name, agent_password, _) = DEMO_LOGINS
    seed_demo("--customers", "0")
    manager = get_user_model().objects.get(username=manager_name)
    manager.set_password("changed-by-someone")
    manager.save()
    seed_demo("--customers", "0")

    # When the manager logs in (on the login page, as a person does), they reach the admin
    assert _log_in(client, manager_name, manager_password)
    assert client.get("/admin/").status_code == 200

    # When the agent logs in, the admin sends them to its login page
    client.logout()
    assert _log_in(client, agent_name, agent_password)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]

    users = get_user_model().objects.filter(username__in=[manager_name, agent_name])
    assert {(u.username, u.is_staff, tuple(u.groups.values_list("name", flat=True))) for u in users} == {
        (manager_name, True, ("Managers",)), (agent_name, False, ("Agents",))
    }
