"""KPI periods from the API and the KPI page: within the data's years and a bounded size, or a clear 400."""

import time

import pytest

from core.bounds import latest_business_year

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("url, field", [
    ("/api/metrics/cohorts/?start=2025-01-01", "end"),
    ("/api/metrics/cohorts/?end=2025-01-01", "start"),
    ("/api/metrics/cohorts/?start=0293-04-16&end=1332-02-23", "start"),
    ("/api/metrics/?month=0001-01", "month"),
    ("/api/metrics/?start=0001-01-01&end=9999-12-31", "start"),
    ("/api/metrics/series/?metric=churn_rate&start=1970-01-01&end=9999-12-31", "end"),
])
def test_a_period_outside_the_business_years_or_too_long_is_a_quick_400(manager_api, url, field):
    # When a KPI period is asked for outside 1970 .. next year, half given, or longer than the endpoint serves
    started = time.monotonic()
    response = manager_api.get(url)
    # Then it is a 400 naming the parameter, answered at once (nothing is computed)
    assert response.status_code == 400, response.content[:300]
    assert field in [e["field"] for e in response.data["errors"]]
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("served, refused", [
    ("/api/metrics/?month=1970-01", "/api/metrics/?month=1969-12"),
    ("/api/metrics/?month={last}-12", "/api/metrics/?month={after}-01"),
    ("/api/metrics/cohorts/?start=2020-01-01&end=2025-01-01", "/api/metrics/cohorts/?start=2020-01-01&end=2025-01-02"),
])
def test_the_widest_periods_are_served_and_one_month_more_is_not(manager_api, served, refused):
    # Given the business years, 1970 to next year (core.bounds), and the cohorts' 60 months
    years = {"last": latest_business_year(), "after": latest_business_year() + 1}
    # When the widest period is asked for, and one month more
    ok, too_much = manager_api.get(served.format(**years)), manager_api.get(refused.format(**years))
    # Then the first is answered and the second is a 400
    assert (ok.status_code, too_much.status_code) == (200, 400), (ok.content[:200], too_much.content[:200])


@pytest.mark.parametrize("query", [
    {"month": "0001-01"}, {"month": "9999-12"}, {"start": "0001-01-01", "end": "9999-12-31"},
    {"month": "1969-12"}, {"from": "0001-01", "to": "2025-01"},
])
def test_the_kpi_page_explains_an_out_of_range_period_and_shows_the_default(client, manager, query):
    # Given a manager on the KPI page
    client.force_login(manager)
    # When its period or chart range is out of the business years (or half given)
    response = client.get("/admin/metrics/metricsnapshot/", query, follow=True)
    # Then the page shows the default period with the reason, instead of failing
    assert response.status_code == 200
    page = response.content.decode()
    assert "is outside the years 1970" in page
