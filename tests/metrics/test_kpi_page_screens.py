"""The KPI page as managers use it: quarter and year presets, "refresh now", every count opening the list of
the customers or cases behind it (as long as the count), readable titles, CSV counts as integers, charts
that say when they are empty and whose axis labels never overlap."""

import csv
import datetime as dt
import html
import io
import re

import pytest
from django.test import Client
from django.utils import timezone

from metrics import tasks
from metrics.models import MetricSnapshot
from metrics.services.charts import svg_line_chart, tick_every
from metrics.services.periods import month_of, quarter_of, year_of
from metrics.services.snapshots import metrics_refresh
from tests.factories import CustomerFactory, OrderFactory, WinbackCaseFactory
from tests.metrics.conftest import at
from winback.services.lifecycle import lifecycle_scan

pytestmark = pytest.mark.django_db
KPIS = "/admin/metrics/metricsnapshot/"
MARCH = month_of(dt.date(2026, 3, 1))


@pytest.fixture
def month_of_work(shop):
    """Customers whose lives cross March 2026 in every way the counts tell apart, and win-back cases opened and
    closed in it (contacted and held out, won, returned and lost)."""
    shop.customer(at(2026, 2, 15))  # active all March
    shop.customer(at(2025, 12, 5), at(2026, 3, 20))  # lapses 5 March, returns 20 March
    shop.customer(at(2025, 10, 1), at(2026, 3, 10))  # in the pool, returns 10 March
    leaves = shop.customer(at(2026, 3, 2))  # acquired and cancelled in March
    shop.customer(at(2026, 1, 3), at(2026, 3, 3), at(2026, 3, 9))  # a repeat buyer
    shop.flush()
    shop.cancel(leaves, at(2026, 3, 15))
    lifecycle_scan(full=True, now=at(2026, 4, 2))
    for status, closed, holdout in [("won", at(2026, 3, 12), False), ("returned", at(2026, 3, 14), False),
                                    ("lost", at(2026, 3, 16), False), ("returned", at(2026, 3, 18), True),
                                    ("lost", at(2026, 4, 3), True)]:
        WinbackCaseFactory(lapsed_at=at(2026, 3, 4), opened_at=at(2026, 3, 4), status=status, closed_at=closed,
                           holdout=holdout, ready=False)


@pytest.fixture
def manager_client(manager) -> Client:
    client = Client()
    client.force_login(manager)
    return client


def drill_links(page: str) -> list[tuple[str, int]]:
    """(href, the number shown) of every count's link on the page."""
    return [(html.unescape(href), int(text.replace(",", "")))
            for href, text in re.findall(r'<a href="([^"]+)" class="kpi-drill"[^>]*>([\d,]+)</a>', page)]


def test_every_count_opens_the_list_behind_it_as_long_as_the_count(manager_client, month_of_work):
    # Given the March page (from its snapshot)
    metrics_refresh(periods=[MARCH])
    page = manager_client.get(KPIS, {"month": "2026-03"}).content.decode()
    links = drill_links(page)
    keys = {re.search(r"kpi=([^&]+)", href).group(1) for href, _ in links}
    # Then every lifecycle count, the rates' inputs and the cohorts have their list
    assert {"CS", "CN", "L0", "Ln", "R", "LP", "RP", "CE", "lost", "cases%3Awon", "cases%3Aclosed",
            "cases%3Acontacted", "cases%3Acontacted_back", "cases%3Aholdout", "cases%3Aholdout_back",
            "buyers", "buyers%3Arepeat", "cohort"} <= keys
    assert any(n > 0 for _, n in links)
    # And each list, opened, is exactly as long as the number on the page
    for href, shown in links:
        response = manager_client.get(href)
        assert response.status_code == 200, href
        assert response.context["cl"].result_count == shown, href
        assert not [m for m in response.context["messages"] if m.level_tag == "error"], href


def test_a_drilldown_link_with_a_bad_period_or_figure_says_what_is_wrong_and_lists_nothing(manager_client, month_of_work):
    response = manager_client.get("/admin/crm/customer/", {"kpi": "L0", "period": "2026-03-01..2026-02-01"})
    assert response.context["cl"].result_count == 0
    assert "is not a period" in response.content.decode()
    response = manager_client.get("/admin/crm/customer/", {"kpi": "cases:won", "period": "2026-03-01..2026-04-01"})
    assert response.context["cl"].result_count == 0
    assert "is not a figure listed here" in html.unescape(response.content.decode())


def test_quarter_and_year_presets_sit_beside_the_month_picker(manager_client, month_of_work):
    today = timezone.localdate()
    page = manager_client.get(KPIS, {"month": "2026-03"}).content.decode()
    this_quarter = quarter_of(today)
    last_quarter = quarter_of(this_quarter.start - dt.timedelta(days=1))
    expected = {"this_quarter": this_quarter, "last_quarter": last_quarter, "this_year": year_of(today),
                "last_year": year_of(dt.date(today.year - 1, 6, 1))}
    for key, period in expected.items():
        match = re.search(rf'<a href="\?([^"]+)" data-preset="{key}"', page)
        assert match, key
        query = html.unescape(match.group(1))
        assert f"start={period.start.isoformat()}&end={period.end.isoformat()}" in query, key
    # Following one shows that quarter, labelled as one, and marks the preset as the one in use
    response = manager_client.get(f"{KPIS}?start={last_quarter.start}&end={last_quarter.end}")
    page = response.content.decode()
    assert f"KPIs: {last_quarter.label()}" in page and re.match(r"^\d{4}-Q[1-4]$", last_quarter.label())
    assert re.search(r'data-preset="last_quarter" class="active"', page)


def test_refresh_now_enqueues_the_periods_refresh_after_commit_and_the_page_shows_the_new_figures(
        manager_client, month_of_work, shop, monkeypatch, django_capture_on_commit_callbacks):
    # Given March's snapshot, then a customer acquired in March recorded after it
    metrics_refresh(periods=[MARCH])
    before = MetricSnapshot.objects.get(metric="CN", start=MARCH.start, end=MARCH.end)
    shop.customer(at(2026, 3, 25))
    shop.flush()
    lifecycle_scan(full=True, now=at(2026, 4, 2))
    sent = []
    monkeypatch.setattr(tasks.refresh_task, "_send", lambda args, kwargs, options: sent.append(kwargs) or
                        tasks.refresh_task.run(*(args or ()), **(kwargs or {})))
    # When the manager presses "refresh now" on March's page
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = manager_client.post(f"{KPIS}refresh/?month=2026-03")
    # Then nothing is sent before the commit, and once committed, the refresh of March is
    assert response.status_code == 302 and response["Location"] == f"{KPIS}?month=2026-03"
    assert sent == [] and len(callbacks) == 1
    callbacks[0]()
    assert sent == [{"start": "2026-03-01", "end": "2026-04-01"}]
    after = MetricSnapshot.objects.get(metric="CN", start=MARCH.start, end=MARCH.end)
    assert after.computed_at > before.computed_at and after.value == before.value + 1
    # And the page shows the new count and when it was computed
    page = manager_client.get(KPIS, {"month": "2026-03"}).content.decode()
    local = timezone.localtime(after.computed_at)
    assert re.search(rf'Computed on <time datetime="{local:%Y-%m-%d}"[^>]*>[^<]+</time> at {local:%H:%M:%S}', page)
    assert re.search(rf'data-drill="CN">{int(after.value)}</a>', page)


def test_refresh_now_refuses_a_bad_or_too_long_period_and_enqueues_nothing(manager_client, monkeypatch):
    sent = []
    monkeypatch.setattr(tasks.refresh_task, "apply_async", lambda args=(), kwargs=None, **options: sent.append(kwargs))
    page = manager_client.post(f"{KPIS}refresh/?month=2026-13", follow=True).content.decode()
    assert "is not a month" in page
    page = manager_client.post(f"{KPIS}refresh/?start=2020-01-01&end=2026-01-01", follow=True).content.decode()
    assert "Refresh at most 36 months at a time; this period touches 72" in page
    assert manager_client.get(f"{KPIS}refresh/").status_code == 405
    assert sent == []


def test_the_refresh_message_names_the_period(manager_client, monkeypatch):
    monkeypatch.setattr(tasks.refresh_task, "apply_async", lambda args=(), kwargs=None, **options: None)
    page = manager_client.post(f"{KPIS}refresh/?start=2026-01-01&end=2026-04-01", follow=True).content.decode()
    assert "Recomputing 2026-Q1 now" in page


def test_csv_counts_are_integers_with_stable_keys(manager_client, month_of_work):
    metrics_refresh(periods=[MARCH])
    rows = list(csv.reader(io.StringIO(manager_client.get(f"{KPIS}csv/headline/", {"month": "2026-03"}).content.decode())))
    assert rows[0] == ["metric", "label", "value", "numerator", "denominator", "definition"]
    by_metric = {r[0]: r for r in rows[1:]}
    assert by_metric["CS"][2:4] == ["3", "3"] and by_metric["CN"][2] == "1"
    assert by_metric["churn_rate"][3:5] == ["1", "3"]
    assert float(by_metric["churn_rate"][2]) == pytest.approx(1 / 3, abs=1e-6)  # a rate stays a fraction
    from metrics.services.definitions import ALL

    counts = [r[2] for r in rows[1:] if ALL[r[0]].unit == "count"] + [cell for r in rows[1:] for cell in r[3:5]]
    assert not [cell for cell in counts if re.fullmatch(r"-?\d+\.0", cell)]
    series = list(csv.reader(io.StringIO(manager_client.get(f"{KPIS}csv/series/", {"month": "2026-03"}).content.decode())))
    assert series[0][0] == "month" and "new_customers" in series[0]
    column = series[0].index("new_customers")
    assert all(re.fullmatch(r"\d+", r[column]) for r in series[1:])


def test_column_titles_are_readable_words_not_keys(manager_client, month_of_work, agent):
    from tests.metrics.test_kpi_page import record_call

    record_call(agent=agent, reason="Price", at=at(2026, 3, 12))
    page = manager_client.get(KPIS, {"month": "2026-03"}).content.decode()
    titles = [html.unescape(re.sub(r"<[^>]+>", "", t)).strip() for t in re.findall(r"<th[^>]*>(.*?)</th>", page, re.S)]
    assert "cases worked" in titles and "revenue won back" in titles and "reach rate" in titles
    assert not [t for t in titles if re.fullmatch(r"[A-Za-z]+(_[A-Za-z]+)+", t)], titles
    # The definitions and inputs are still there, behind a toggle each
    assert page.count("<details") >= 20 and "<summary>How it is computed</summary>" in page


def test_an_empty_chart_says_so_and_axis_labels_never_overlap(manager_client, month_of_work):
    # A chart range without any data
    page = manager_client.get(KPIS, {"month": "2026-03", "from": "1990-01", "to": "1990-12"}).content.decode()
    assert "No data for this period" in page
    # Sixty months on a 520 px chart: only as many labels as fit side by side
    labels = [f"{2020 + i // 12}-{i % 12 + 1:02d}" for i in range(60)]
    svg = svg_line_chart(title="t", unit="rate", points=[(label, 0.1) for label in labels])
    xs = [float(x) for x in re.findall(r'<text x="([\d.]+)" y="168" font-size="10"', svg)]
    assert 3 <= len(xs) <= 12
    assert min(b - a for a, b in zip(xs, xs[1:])) >= len("2020-01") * 6
    assert tick_every(labels, 452) > 1 and tick_every(labels[:4], 452) == 1


def test_a_customer_list_without_a_drilldown_is_unchanged(manager_client):
    CustomerFactory.create_batch(3)
    assert manager_client.get("/admin/crm/customer/").context["cl"].result_count == 3


def test_the_queue_drilldown_lists_the_callable_open_cases(manager_client):
    WinbackCaseFactory.create_batch(2)
    WinbackCaseFactory(holdout=True)
    OrderFactory()  # a customer without a case
    response = manager_client.get("/admin/winback/winbackcase/", {"kpi": "queue"})
    assert response.context["cl"].result_count == 2
