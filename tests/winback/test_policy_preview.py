"""The dormancy policy's preview: what a save would rebuild and how many customers the lifecycle rule would call
lapsed and at risk under the form's values, before anything is saved (winback/services/policy_preview.py,
the dormancy policy's admin page)."""

import datetime as dt
from collections import Counter
from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.db import connection
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm.models import Customer
from crm.services.audit import SYSTEM
from crm.services.customers import customer_cancel
from tests.factories import ModelFitFactory
from tests.winback.conftest import customer_with_orders, day
from tests.winback.test_lifecycle_property import NOW as PROPERTY_NOW
from tests.winback.test_lifecycle_property import build_orders, history, make_customer
from winback.models import DormancyPolicy
from winback.services.lifecycle import lifecycle_scan
from winback.services.policy import policy_change, policy_current
from winback.services import policy_preview as policy_preview_module
from winback.services.policy_preview import STATUSES, StatusCounts, policy_preview

pytestmark = pytest.mark.django_db

NOW = day(400)
ADD_URL = "/admin/winback/dormancypolicy/add/"


def stored_counts() -> StatusCounts:
    counts = Counter(Customer.objects.values_list("status", flat=True))
    return StatusCounts(**{s: counts.get(s, 0) for s in STATUSES})


def cancel(customer: Customer, at: dt.datetime) -> None:
    customer_cancel(actor=SYSTEM, customer=customer, cancelled_at=at)


@pytest.fixture
def customers(db) -> list[Customer]:
    """Every shape of history the status depends on, as of NOW (day 400)."""
    built = [
        customer_with_orders([0]),  # one order long ago
        customer_with_orders([0, 10, 20, 30]),  # a regular who stopped
        customer_with_orders([380]),  # a recent first order
        customer_with_orders([300, 340]),
        customer_with_orders([0, 350]),
        customer_with_orders([200, 210, 220, 230, 240, 250]),  # every 10 days, then nothing for 150
        customer_with_orders([310, 330, 350, 370, 390]),  # every 20 days, still buying
        customer_with_orders([0, 90]),  # an order exactly on a 90-day window's crossing is in time
        customer_with_orders([100, 100, 100]),  # three orders at one instant
        customer_with_orders([0, 5, 5.5, 6, 200]),  # several purchase days, a long break, back
        customer_with_orders([]),  # a prospect: no order, no contract
        customer_with_orders([], acquired_at=day(10)),  # a contract without an order yet
        customer_with_orders([0, 450]),  # lapsed, and an order dated ahead of NOW already reactivates them
        customer_with_orders([390, 420]),  # the next order is ahead; the current segment is young
        customer_with_orders([420]),  # their only order is ahead of NOW
    ]
    contract = customer_with_orders([], acquired_at=day(10))
    cancel(contract, day(50))  # cancelled before any order
    ordered_then_cancelled = customer_with_orders([0, 100])
    cancel(ordered_then_cancelled, day(120))
    cancel_ahead = customer_with_orders([0])
    cancel(cancel_ahead, day(500))  # a cancellation dated ahead: the lapse at day 90 comes first
    cancel_before_lapse = customer_with_orders([370])
    cancel(cancel_before_lapse, day(395))
    came_back = customer_with_orders([20], acquired_at=day(5))
    cancel(came_back, day(8))  # cancelled between the contract and the first order, then ordered
    return [*built, contract, ordered_then_cancelled, cancel_ahead, cancel_before_lapse, came_back]


def policy_values(**values) -> dict:
    current = policy_current()
    return {"rule": current.rule, "k": current.k, "at_risk_k": current.at_risk_k, "min_orders": current.min_orders,
            "default_days": current.default_days, "min_days": current.min_days, "max_days": current.max_days,
            "p_alive_min": current.p_alive_min, "model_fit": current.model_fit,
            "holdout_share": current.holdout_share, "attribution_window_days": current.attribution_window_days,
            **values}


CANDIDATES = {
    "window 30 days": {"rule": "window", "default_days": 30},
    "window 90 days": {"rule": "window", "default_days": 90},
    "window 365 days": {"rule": "window", "default_days": 365, "max_days": 365},
    "rhythm k=3": {"rule": "rhythm", "k": Decimal("3"), "at_risk_k": Decimal("1.5")},
    "rhythm k=1.5, from 2 orders, at least 7 days": {"rule": "rhythm", "k": Decimal("1.5"), "at_risk_k": Decimal("1"),
                                                     "min_orders": 2, "min_days": 7},
    "rhythm k=10, at most 100 days": {"rule": "rhythm", "k": Decimal("10"), "at_risk_k": Decimal("9.99"),
                                      "max_days": 100},
    "model, P(alive) below 30%": {"rule": "model", "p_alive_min": Decimal("0.30")},
    "model, P(alive) below 90%": {"rule": "model", "p_alive_min": Decimal("0.90"), "default_days": 45},
}


@pytest.mark.parametrize("name", list(CANDIDATES))
def test_the_preview_counts_what_saving_the_policy_and_rebuilding_stores(customers, name):
    # Given customers whose lifecycles were built with the policy in use
    lifecycle_scan(full=True, now=NOW)
    before, versions = stored_counts(), DormancyPolicy.objects.count()
    values = policy_values(**CANDIDATES[name])
    if values["rule"] == "model":
        values["model_fit"] = ModelFitFactory()
    # When the form's values are previewed
    preview = policy_preview(values=values, now=NOW)
    # Then nothing was saved, the policy in use is counted as what is stored, and every customer is rebuilt
    assert DormancyPolicy.objects.count() == versions and stored_counts() == before
    assert preview.current == before
    assert preview.customers == len(customers) == Customer.objects.count()
    # And when the policy is saved and the lifecycles rebuilt, the statuses are the ones previewed
    policy_change(user=None, values=values)
    lifecycle_scan(full=True, now=NOW)
    assert stored_counts() == preview.proposed
    assert preview.proposed.lapsed + preview.proposed.at_risk > 0


def test_the_candidates_differ_so_the_comparison_can_fail(customers):
    # Given the hand-built customers, when two rules are previewed, then they disagree on someone
    short = policy_preview(values=policy_values(rule="window", default_days=30), now=NOW).proposed
    long = policy_preview(values=policy_values(rule="window", default_days=365, max_days=365), now=NOW).proposed
    assert short.lapsed > long.lapsed
    assert short.cancelled == long.cancelled == 3  # a cancellation is no rule's: the same under every policy
    assert (short.prospect, long.prospect) == (1, 1)


def test_the_preview_names_the_values_that_change(customers):
    # Given the policy in use, when only the holdout share changes, then statuses cannot move (but a save rebuilds)
    preview = policy_preview(values=policy_values(holdout_share=Decimal("0.2")), now=NOW)
    assert preview.changed_fields == ("holdout_share",)
    assert not preview.statuses_may_change and preview.proposed == preview.current
    # When the window changes, then that is the change
    preview = policy_preview(values=policy_values(rule="window", default_days=45), now=NOW)
    assert "default_days" in preview.changed_fields and preview.statuses_may_change


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(hs=st.lists(history, min_size=3, max_size=15), default_days=st.sampled_from([30, 90, 200]),
       k=st.sampled_from([Decimal("1.5"), Decimal("3")]), rule=st.sampled_from(["rhythm", "window"]))
def test_on_random_histories_the_preview_is_what_the_rebuild_stores(hs, default_days, k, rule):
    # Given random histories (bursts, same-instant orders, contracts, cancellations, orders on a crossing)
    for h in hs:
        make_customer(h, build_orders(h))
    values = policy_values(rule=rule, default_days=default_days, k=k, at_risk_k=k / 2)
    # When previewed, then saved and rebuilt, the stored statuses are the preview's
    preview = policy_preview(values=values, now=PROPERTY_NOW)
    policy_change(user=None, values=values)
    lifecycle_scan(full=True, now=PROPERTY_NOW)
    assert stored_counts() == preview.proposed


# --- The admin page ------------------------------------------------------------------------------------------

def form_data(**values) -> dict:
    data = {key: ("" if value is None else value) for key, value in policy_values(**values).items()}
    data["model_fit"] = data["model_fit"].pk if data["model_fit"] else ""
    return {**data, "note": ""}


def test_a_manager_previews_the_form_and_nothing_is_saved(client, manager, customers):
    # Given a manager on the dormancy policy's form, with lifecycles built
    lifecycle_scan(full=True)
    client.force_login(manager)
    versions = DormancyPolicy.objects.count()
    expected = policy_preview(values=policy_values(rule="window", default_days=30))
    # When they press Preview with a 30-day window
    response = client.post(ADD_URL, {**form_data(rule="window", default_days=30), "_preview": "1"})
    # Then the page shows the form again, with what a save would do, and no policy was added
    assert response.status_code == 200
    assert DormancyPolicy.objects.count() == versions
    preview = response.context["policy_preview"]
    assert preview.proposed == expected.proposed and preview.customers == len(customers)
    html = response.content.decode()
    assert 'id="policy-preview"' in html
    assert f"rebuilds the lifecycle of {len(customers)} customers" in html
    assert f'data-status="lapsed" data-proposed="{expected.proposed.lapsed}"' in html
    assert 'value="30"' in html  # the form keeps the values previewed


def test_invalid_values_get_the_form_errors_and_no_preview(client, manager, customers):
    # Given a manager on the form
    client.force_login(manager)
    before = list(DormancyPolicy.objects.values_list("pk", flat=True))
    # When they preview, then save, an at-risk threshold beyond the lapse and a window beyond the bounds
    for button in ("_preview", "_save"):
        response = client.post(ADD_URL, {**form_data(rule="rhythm", k="2", at_risk_k="3", default_days=99999),
                                          button: "1"})
        # Then the form shows each error, there is no preview, and nothing changed
        assert response.status_code == 200
        assert "policy_preview" not in response.context
        errors = response.context["adminform"].form.errors
        assert set(errors) == {"at_risk_k", "default_days"}, errors
        assert 'id="policy-preview"' not in response.content.decode()
    assert list(DormancyPolicy.objects.values_list("pk", flat=True)) == before


def test_saving_says_what_the_save_does(client, manager, customers):
    # Given a manager on the form
    client.force_login(manager)
    # When they save a 60-day window
    response = client.post(ADD_URL, {**form_data(rule="window", default_days=60), "_save": "1"}, follow=True)
    # Then it is the policy, by them, and the message says which version and how many lifecycles it rebuilds
    policy = policy_current()
    assert (policy.rule, policy.default_days, policy.created_by) == ("window", 60, manager)
    messages = [str(m) for m in response.context["messages"]]
    assert any(f"v{policy.pk}" in m and f"rebuilding the lifecycle of {len(customers)} customers" in m
               for m in messages), messages
    assert LogEntry.objects.filter(object_id=str(policy.pk), user=manager).exists()


def test_the_form_says_what_saving_does_before_any_preview(client, manager, customers):
    client.force_login(manager)
    response = client.get(ADD_URL)
    html = response.content.decode()
    assert f"rebuilds the lifecycle of {len(customers)} customers" in html
    assert 'name="_preview"' in html


def test_the_preview_is_a_managers(client, agent, customers):
    # Given an agent (no admin), when they post a preview, then they are sent to the admin login
    client.force_login(agent)
    response = client.post(ADD_URL, {**form_data(rule="window", default_days=30), "_preview": "1"})
    assert response.status_code == 302 and reverse("admin:login") in response["Location"]


@pytest.mark.postgres
def test_a_preview_that_takes_too_long_is_stopped_and_the_form_still_saves(client, manager, customers, monkeypatch):
    # Given a count that would outlast the preview's time limit (a stand-in statement that sleeps)
    monkeypatch.setattr(policy_preview_module, "_statement", lambda policies: "SELECT pg_sleep(2)")
    monkeypatch.setattr(policy_preview_module, "PREVIEW_TIMEOUT_MS", 100)
    client.force_login(manager)
    versions = DormancyPolicy.objects.count()
    # When the manager presses Preview
    response = client.post(ADD_URL, {**form_data(rule="window", default_days=30), "_preview": "1"})
    # Then the database stopped it, the page says so with the form intact, and nothing was saved
    assert response.status_code == 200 and "policy_preview" not in response.context
    assert any("took too long" in str(m) for m in response.context["messages"])
    assert DormancyPolicy.objects.count() == versions
    with connection.cursor() as cursor:  # the request's limit did not outlive the preview
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == "0"
    # And saving still works
    client.post(ADD_URL, {**form_data(rule="window", default_days=30), "_save": "1"})
    assert DormancyPolicy.objects.count() == versions + 1
