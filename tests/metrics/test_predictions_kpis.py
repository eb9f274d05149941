"""Predicted customer value on the KPI page and in the API: the predicted 12-month CLV of the lapsed pool, of
the customers won back in the period and of the whole base, each with how it is computed; n/a (and how to
get a fit) without a usable fit; the weekly tracking chart of the fit."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from core.locale_format import date_local
from metrics.services.periods import month_of
from metrics.services.predictions import predicted_value
from predictions.models import CustomerPrediction, ModelFit
from tests.factories import CustomerFactory, WinbackCaseFactory

pytestmark = pytest.mark.django_db

KPIS = "/admin/metrics/metricsnapshot/"
API = "/api/metrics/predictions/"
UTC = dt.timezone.utc
MARCH = month_of(dt.date(2025, 3, 1))
AS_OF = dt.datetime(2025, 3, 5, 2, tzinfo=UTC)  # a Wednesday: its week starts on Monday 3 March
PARAMS = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
TRACKING = {"weeks": ["2025-02-17", "2025-02-24", "2025-03-03", "2025-03-10"], "actual": [3, 5, 4, 6],
            "expected": [3.5, 4.25, 4.75, 5.0], "until": "2025-03-14T00:00:00+00:00"}


def fits(*, purchase: bool = True, spend: bool = True) -> ModelFit | None:
    fit = None
    if purchase:
        fit = ModelFit.objects.create(model="bgnbd", fitted_at=AS_OF, as_of=AS_OF, trigger="test", params=PARAMS,
                                      log_likelihood=-9582.43, converged=True, usable=True, customers=2357,
                                      repeat_buyers=1411, tracking=TRACKING)
    if spend:
        ModelFit.objects.create(model="gamma_gamma", fitted_at=AS_OF, as_of=AS_OF, trigger="test",
                                params={"p": 6.25, "q": 3.74, "gamma": 15.44}, converged=True, usable=True)
    return fit


def predict(customer, fit: ModelFit, clv: str | None) -> None:
    CustomerPrediction.objects.create(customer=customer, fit=fit, p_alive=0.5, p_alive_model="bgnbd",
                                      expected_purchases_90d=1.0, expected_order_value=Decimal("40.00"),
                                      predicted_clv_12m=None if clv is None else Decimal(clv), scored_at=AS_OF)


def won(customer, closed_at: dt.datetime, **fields) -> None:
    WinbackCaseFactory(customer=customer, status="won", closed_at=closed_at, ready=False,
                       lapsed_at=closed_at - dt.timedelta(days=20), **fields)


@pytest.fixture
def base():
    """Customers with predictions and win-back cases around March 2025 (UTC, the default business zone)."""
    fit = fits()
    lapsed = CustomerFactory(status="lapsed")
    cancelled = CustomerFactory(status="cancelled")
    lapsed_unscored = CustomerFactory(status="lapsed")  # a prediction without a CLV: not counted
    lapsed_without_row = CustomerFactory(status="lapsed")  # no prediction at all: not counted
    back = CustomerFactory(status="active")
    back_on_the_first = CustomerFactory(status="active")
    back_in_february = CustomerFactory(status="active")
    back_on_april_first = CustomerFactory(status="active")
    care_call = CustomerFactory(status="active")
    other = CustomerFactory(status="active")
    for customer, clv in [(lapsed, "100.00"), (cancelled, "50.50"), (lapsed_unscored, None), (back, "200.00"),
                          (back_on_the_first, "20.00"), (back_in_february, "1000.00"),
                          (back_on_april_first, "3000.00"), (care_call, "7.00"), (other, "10.00")]:
        predict(customer, fit, clv)
    won(back, dt.datetime(2025, 3, 10, 12, tzinfo=UTC))
    won(back, dt.datetime(2025, 3, 20, 12, tzinfo=UTC))  # twice in the month: counted once
    won(back_on_the_first, dt.datetime(2025, 3, 1, tzinfo=UTC))  # the period's start is in it
    won(back_in_february, dt.datetime(2025, 2, 28, 23, 59, tzinfo=UTC))
    won(back_on_april_first, dt.datetime(2025, 4, 1, tzinfo=UTC))  # the end is not
    won(care_call, dt.datetime(2025, 3, 12, tzinfo=UTC), kind="care")  # a care call is not a win-back
    won(lapsed_without_row, dt.datetime(2025, 3, 15, tzinfo=UTC))  # won back, then lapsed; no prediction
    return fit


def test_the_three_pools_sum_count_and_average_the_predicted_clv(base):
    pools = predicted_value(period=MARCH)["pools"]
    assert pools["available"] and pools["unavailable_reason"] == ""
    assert pools["as_of"] == AS_OF and pools["fit"] == base
    figures = {k: (pools[k]["sum"], pools[k]["count"], pools[k]["mean"]) for k in ("lapsed", "won_back", "base")}
    assert figures == {
        "lapsed": (Decimal("150.50"), 2, Decimal("75.25")),
        "won_back": (Decimal("220.00"), 2, Decimal("110.00")),
        "base": (Decimal("4387.50"), 8, Decimal("548.44")),
    }
    for key in ("lapsed", "won_back", "base"):
        assert pools[key]["definition"].startswith("Sum of the predicted 12-month CLV")
    assert "lapsed or cancelled" in pools["lapsed"]["definition"]
    assert "closed as won in the period" in pools["won_back"]["definition"]


def test_a_pool_without_predictions_sums_to_zero_with_no_mean():
    fits()
    pools = predicted_value(period=MARCH)["pools"]
    assert [(pools[k]["sum"], pools[k]["count"], pools[k]["mean"]) for k in ("lapsed", "won_back", "base")] == [
        (Decimal("0.00"), 0, None)] * 3


@pytest.mark.parametrize("purchase, spend, missing", [
    (False, False, "BG/NBD or MBG/NBD"), (False, True, "BG/NBD or MBG/NBD"), (True, False, "Gamma-Gamma"),
])
def test_without_a_usable_fit_every_figure_is_na_and_says_how_to_get_one(purchase, spend, missing):
    fits(purchase=purchase, spend=spend)
    ModelFit.objects.create(model="bgnbd", fitted_at=AS_OF, as_of=AS_OF, trigger="test", usable=False,
                            reason="Only 12 repeat buyers")  # a failed attempt is not a fit in use
    pools = predicted_value(period=MARCH)["pools"]
    assert not pools["available"]
    assert missing in pools["unavailable_reason"] and "manage.py fit_models" in pools["unavailable_reason"]
    assert "nightly" in pools["unavailable_reason"]
    for key in ("lapsed", "won_back", "base"):
        assert (pools[key]["sum"], pools[key]["count"], pools[key]["mean"]) == (None, 0, None)


# ---------------------------------------------------------------------------------------------------------
# The KPI page


def test_the_kpi_page_shows_the_predicted_value_with_definitions_and_the_tracking_chart(client, manager, base):
    client.force_login(manager)
    response = client.get(KPIS, {"month": "2025-03"})
    assert response.status_code == 200
    page = response.content.decode()
    section = page[page.index('id="kpi-predicted"'):page.index("Cohort retention")]
    assert "Predicted customer value" in section
    for pool, value in [("lapsed", "150.50"), ("won_back", "220.00"), ("base", "4,387.50")]:
        card = section[section.index(f'data-pool="{pool}"'):]
        assert card.index(f'<div class="kpi-value"><bdi dir="ltr">{value}</bdi></div>') < card.index("kpi-how"), pool  # in its own card
    assert "2 customers, mean 75.25" in section and "8 customers, mean 548.44" in section
    assert section.count("How: Sum of the predicted 12-month CLV") == 3
    assert "lapsed or cancelled" in section and "closed as won in the period" in section
    assert "Count: the customers of the pool with a predicted CLV" in section
    # The chart: two lines with a legend, the fit's week marked, the note and the fit under it.
    assert "Repeat purchases per week: expected vs actual" in section
    svg = section[section.index("<svg"):section.index("</svg>")]
    assert 'data-series="actual"' in svg and 'data-series="expected"' in svg
    assert ">Actual</text>" in svg and ">Expected</text>" in svg
    assert "fit as of this week" in svg
    # The texts read as sentences; the names, dates and signed numbers in them are isolated (<bdi>, <time>).
    text = re.sub(r"<[^>]+>", "", section)
    as_of = f"{date_local(value=base.as_of)} {timezone.localtime(base.as_of):%H:%M}"
    assert f"Expected: BG/NBD with the parameters fitted as of {as_of}; weeks after it are out of sample." in text
    assert "r = 0.243, alpha = 4.414, a = 0.793, b = 2.426" in text
    assert "log-likelihood -9,582.43" in text and "2,357 customers, 1,411 repeat buyers" in text
    assert "<td><bdi>2025-03-10</bdi></td><td>6</td><td>5.0</td>" in section  # the numbers behind the chart
    assert "style=" not in section and "<script" not in section


def test_the_kpi_page_says_na_and_how_to_get_a_fit_without_one(client, manager):
    client.force_login(manager)
    page = client.get(KPIS, {"month": "2025-03"}).content.decode()
    section = page[page.index('id="kpi-predicted"'):page.index("Cohort retention")]
    assert 'id="kpi-predicted-na"' in section and "manage.py fit_models" in section
    assert section.count('<div class="kpi-value">n/a</div>') == 3
    assert "<svg" not in section
    assert "No usable BG/NBD or MBG/NBD fit yet" in re.sub(r"<[^>]+>", "", section)  # the models' names isolated


def test_a_fit_without_tracking_says_the_next_fit_computes_it(client, manager):
    fit = fits()
    fit.tracking = {}
    fit.save(update_fields=["tracking"])
    client.force_login(manager)
    page = client.get(KPIS, {"month": "2025-03"}).content.decode()
    section = page[page.index('id="kpi-predicted"'):page.index("Cohort retention")]
    assert "This fit has no weekly tracking yet" in section and "<svg" not in section
    assert "r = 0.243" in section  # the fit's parameters are still shown


# ---------------------------------------------------------------------------------------------------------
# The API


def test_the_api_answers_the_pools_with_definitions_and_the_tracking(manager_api, base):
    response = manager_api.get(API, {"month": "2025-03"})
    assert response.status_code == 200, response.content[:300]
    data = response.json()
    assert data["period"] == {"start": "2025-03-01", "end": "2025-04-01", "label": "2025-03"}
    assert data["available"] is True and data["unavailable_reason"] == ""
    assert data["pools"]["lapsed"] == {"sum": "150.50", "count": 2, "mean": "75.25",
                                       "definition": data["pools"]["lapsed"]["definition"]}
    assert data["pools"]["won_back"]["sum"] == "220.00" and data["pools"]["base"]["count"] == 8
    for pool in data["pools"].values():
        assert pool["definition"].startswith("Sum of the predicted 12-month CLV")
    tracking = data["tracking"]
    assert (tracking["weeks"], tracking["actual"], tracking["expected"]) == (
        TRACKING["weeks"], TRACKING["actual"], TRACKING["expected"])
    assert tracking["as_of_week"] == "2025-03-03"
    assert tracking["fit"]["model"] == "bgnbd" and tracking["fit"]["params"] == PARAMS
    assert tracking["fit"]["log_likelihood"] == -9582.43
    assert "Fader, Hardie & Lee" in tracking["definition"] and "out of sample" in tracking["note"]
    # A custom range works the same way: February holds one win-back.
    feb = manager_api.get(API, {"start": "2025-02-01", "end": "2025-03-01"}).json()
    assert (feb["pools"]["won_back"]["sum"], feb["pools"]["won_back"]["count"]) == ("1000.00", 1)


def test_the_api_says_na_without_a_fit(manager_api):
    data = manager_api.get(API, {"month": "2025-03"}).json()
    assert data["available"] is False and "manage.py fit_models" in data["unavailable_reason"]
    assert data["pools"]["base"] == {"sum": None, "count": None, "mean": None,
                                     "definition": data["pools"]["base"]["definition"]}
    assert data["tracking"]["fit"] is None and data["tracking"]["weeks"] == []
    assert "No usable BG/NBD or MBG/NBD fit yet" in data["tracking"]["empty_reason"]


def test_the_api_refuses_agents_and_anonymous_callers(agent):
    anonymous = APIClient()
    assert anonymous.get(API, {"month": "2025-03"}).status_code in (401, 403)
    client = APIClient()
    client.force_authenticate(agent)
    response = client.get(API, {"month": "2025-03"})
    assert response.status_code == 403
    assert "KPIs are for managers" in response.content.decode()


@pytest.mark.parametrize("query, field, message", [
    ({"month": "2025-13"}, "month", "'2025-13' is not a month: use YYYY-MM."),
    ({"month": "1969-12"}, "month", "is outside the years 1970"),
    ({"month": "2025-03", "start": "2025-03-01"}, "month", "Give either month or start and end, not both."),
    ({}, "start", "Give month=YYYY-MM, or start=YYYY-MM-DD and end=YYYY-MM-DD (end exclusive)."),
    ({"start": "2025-03-01", "end": "march"}, "end", "'march' is not a date: use YYYY-MM-DD."),
    ({"start": "2025-03-10", "end": "2025-03-01"}, "end", "The period must end after it starts"),
])
def test_a_bad_period_is_a_400_that_says_what_is_wrong(manager_api, query, field, message):
    response = manager_api.get(API, query)
    assert response.status_code == 400, response.content[:300]
    errors = {e["field"]: e["message"] for e in response.json()["errors"]}
    assert field in errors and message in errors[field], errors


def test_the_schema_documents_the_endpoint():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    operation = schema["paths"]["/api/metrics/predictions/"]["get"]
    assert {p["name"] for p in operation["parameters"]} >= {"month", "start", "end"}
    assert "predicted 12-month CLV" in operation["description"]


def test_the_section_reads_stored_rows_only(base, django_assert_max_num_queries):
    # Nothing is fitted or scored for the page: the fits in use and one aggregate per pool.
    with django_assert_max_num_queries(5):
        predicted_value(period=MARCH)
    assert ModelFit.objects.count() == 2  # no fit was added
