import csv
import datetime as dt
import io

import pytest
from django.core.management import call_command

from metrics.admin import csv_safe
from tests.metrics.test_snapshots import UNTIL

pytestmark = pytest.mark.django_db
KPIS = "/admin/metrics/metricsnapshot/"


@pytest.fixture
def demo_with_snapshots():
    from winback.services.lifecycle import lifecycle_scan

    call_command("seed_demo", "--customers", "300", "--until", str(UNTIL), "--seed", "3", stdout=io.StringIO())
    lifecycle_scan(full=True, now=dt.datetime(2025, 7, 1, tzinfo=dt.timezone.utc))
    call_command("metrics_refresh", "--start", "2024-06-01", "--end", "2025-07-01", "--inline", stdout=io.StringIO())


def record_call(*, agent, reason: str, at: dt.datetime) -> None:
    """A worked call on a case of a demo customer, as the agents' page records it."""
    from crm.models import Contact, Customer
    from winback.models import Disposition, LeaveReason, WinbackCase

    customer = Customer.objects.order_by("id").first()
    case = WinbackCase.objects.create(customer=customer, lapsed_at=at, opened_at=at, status="lost", closed_at=at)
    contact = Contact.objects.create(customer=customer, channel="call", occurred_at=at, agent=agent, outcome="reached_declined")
    Disposition.objects.create(case=case, agent=agent, contact=contact, outcome="reached_declined",
                               reason=LeaveReason.objects.get(name=reason), created_at=at)
    # The page reads a refreshed month's tables: refresh it, as the next scan or the nightly refresh would.
    from metrics.services.periods import month_of
    from metrics.services.snapshots import metrics_refresh

    metrics_refresh(periods=[month_of(at.date())])


@pytest.fixture
def kpi_manager(manager, demo_with_snapshots):
    manager.refresh_from_db()  # the demo seeder sets the password of its own "manager" login
    return manager


def test_the_kpi_page_shows_every_headline_figure_with_how_it_is_computed(client, kpi_manager):
    client.force_login(kpi_manager)
    response = client.get(KPIS, {"month": "2025-03"})
    assert response.status_code == 200
    page = response.content.decode()
    from metrics.services.definitions import ALL, HEADLINE

    for name in HEADLINE:
        assert f'data-metric="{name}"' in page
        assert ALL[name].formula.split(";")[0].replace("'", "&#x27;") in page
    assert "How: L0 / CS" in page and " of " in page  # inputs such as "12 of 240"
    assert page.count("<svg") >= 6 and 'id="kpi-cohorts"' in page and 'id="kpi-agents"' in page
    assert "Figures from the snapshot" in page
    assert "vs <bdi>2025-02</bdi>" in page  # the period isolated, so it reads right in right-to-left


def test_the_kpi_page_falls_back_to_live_figures_and_explains_bad_input(client, kpi_manager):
    client.force_login(kpi_manager)
    page = client.get(KPIS, {"start": "2025-01-10", "end": "2025-02-10"}).content.decode()
    assert "Figures computed live" in page
    page = client.get(KPIS, {"month": "2025-13"}, follow=True).content.decode()
    assert "is not a month" in page


def test_agents_are_refused(client, agent):
    client.force_login(agent)
    assert client.get(KPIS).status_code == 302
    assert client.get(KPIS + "csv/headline/").status_code == 302


@pytest.mark.parametrize("table", ["headline", "series", "cohorts", "reasons", "agents"])
def test_each_table_exports_as_csv(client, kpi_manager, agent, table):
    record_call(agent=agent, reason="Price", at=dt.datetime(2025, 3, 12, 10, tzinfo=dt.timezone.utc))
    client.force_login(kpi_manager)
    response = client.get(f"{KPIS}csv/{table}/", {"month": "2025-03"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert len(rows) >= 2


def test_csv_cells_that_could_run_as_formulas_are_neutralised():
    assert [csv_safe(v) for v in ["=HYPERLINK(\"x\")", "+1", "-cmd", "@SUM(A1)", "plain", -0.25, "-12", 3]] == [
        "'=HYPERLINK(\"x\")", "'+1", "'-cmd", "'@SUM(A1)", "plain", "-0.25", "-12", "3"]


def test_an_agent_name_in_the_csv_cannot_inject_a_formula(client, kpi_manager):
    from tests.factories import UserFactory

    rogue = UserFactory(username="=cmd|calc")
    record_call(agent=rogue, reason="Price", at=dt.datetime(2025, 3, 12, 10, tzinfo=dt.timezone.utc))
    client.force_login(kpi_manager)
    rows = list(csv.reader(io.StringIO(client.get(f"{KPIS}csv/agents/", {"month": "2025-03"}).content.decode())))
    assert rows[1][0] == "'=cmd|calc" and rows[1][2] == "1"  # one call
    assert rows[-1][0] == "Team"
