"""The KPI page's tables and program figures open the rows behind each count: per agent and per reason for
leaving (``agent_<column>:<agent id | team>``, ``reason:<id>``), coupons issued and redeemed, NPS/CSAT/CES
responses and the predicted-value pools, each list exactly as long as the count shown and made of the rows
the count counts."""

import datetime as dt
import html
import re
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client

from crm.models import Feedback
from metrics.services.periods import month_of
from metrics.services.snapshots import metrics_refresh
from tests.factories import (
    CouponFactory, CustomerFactory, CustomerPredictionFactory, DispositionFactory, FeedbackFactory, LeaveReasonFactory,
    ModelFitFactory, UserFactory, WinbackCaseFactory,
)
from tests.metrics.conftest import at

pytestmark = pytest.mark.django_db
KPIS = "/admin/metrics/metricsnapshot/"
MARCH = month_of(dt.date(2026, 3, 1))
PERIOD = "2026-03-01..2026-04-01"


def _case(closed: dt.datetime | None = None):
    case = WinbackCaseFactory(lapsed_at=at(2026, 2, 1), opened_at=at(2026, 2, 1), ready=False)
    if closed is not None:
        type(case).objects.filter(pk=case.pk).update(status="won", closed_at=closed)
    return case


@pytest.fixture
def march():
    """Two agents and two reasons in March 2026. Ana works cases A and B, books a callback on A and keeps it,
    offers a coupon on A that is redeemed, and wins A. Ben works B and C, books a callback on B he misses,
    offers a coupon on B never redeemed, and wins C. B is worked by both (the team's cases worked count it
    twice). D is won without a call (credited to nobody). Calls, coupons and feedback outside March and a
    coupon without a call test the edges; predictions give the three pools."""
    ana, ben = UserFactory(username="ana"), UserFactory(username="ben")
    dear, moved = LeaveReasonFactory(name="Too dear"), LeaveReasonFactory(name="Moved away")
    a, b, c, d = _case(closed=at(2026, 3, 10)), _case(), _case(closed=at(2026, 3, 20)), _case(closed=at(2026, 3, 25))
    coupon_a = CouponFactory(customer=a.customer, case=a, issued_at=at(2026, 3, 6, 10), redeemed_at=at(2026, 3, 9))
    coupon_b = CouponFactory(customer=b.customer, case=b, issued_at=at(2026, 3, 9))
    coupon_alone = CouponFactory(issued_at=at(2026, 3, 12))  # issued without a call
    CouponFactory(issued_at=at(2026, 2, 20), redeemed_at=at(2026, 3, 2))  # issued in February
    calls = {
        "a1": DispositionFactory(case=a, agent=ana, created_at=at(2026, 3, 3)),
        "a2": DispositionFactory(case=a, agent=ana, created_at=at(2026, 3, 4), outcome="callback_requested",
                                 callback_at=at(2026, 3, 6, 10)),
        "a3": DispositionFactory(case=a, agent=ana, created_at=at(2026, 3, 6, 10) + dt.timedelta(minutes=5),
                                 outcome="reached_will_return", coupon=coupon_a),
        "b1": DispositionFactory(case=b, agent=ben, created_at=at(2026, 3, 5), outcome="reached_declined", reason=dear),
        "b2": DispositionFactory(case=b, agent=ana, created_at=at(2026, 3, 8), outcome="reached_declined", reason=moved),
        "b3": DispositionFactory(case=b, agent=ben, created_at=at(2026, 3, 9), outcome="callback_requested",
                                 callback_at=at(2026, 3, 12), coupon=coupon_b),
        "c1": DispositionFactory(case=c, agent=ben, created_at=at(2026, 3, 15), outcome="reached_will_return",
                                 reason=moved),
        "feb": DispositionFactory(case=c, agent=ana, created_at=at(2026, 2, 27), reason=dear),
        "apr": DispositionFactory(case=b, agent=ben, created_at=at(2026, 4, 2), reason=dear),
    }
    feedback = {}
    for name, kind, score in [("nps10", "nps", 10), ("nps9", "nps", 9), ("nps7", "nps", 7), ("nps3", "nps", 3),
                              ("csat5", "csat", 5), ("csat2", "csat", 2), ("ces3", "ces", 3), ("ces6", "ces", 6)]:
        feedback[name] = FeedbackFactory(kind=kind, score=score, responded_at=at(2026, 3, 14))
    FeedbackFactory(kind="nps", score=10, responded_at=at(2026, 2, 14))  # February's
    fit = ModelFitFactory()
    ModelFitFactory(model="gamma_gamma", params={"p": 6.25, "q": 3.74, "gamma": 15.44})
    lapsed, cancelled = CustomerFactory(status="lapsed"), CustomerFactory(status="cancelled")
    unscored = CustomerFactory(status="lapsed")
    for customer, clv in [(lapsed, "100.00"), (cancelled, "50.00"), (c.customer, "300.00"), (a.customer, "20.00"),
                          (unscored, None)]:
        CustomerPredictionFactory(customer=customer, fit=fit, predicted_clv_12m=None if clv is None else Decimal(clv))
    return {"ana": ana, "ben": ben, "dear": dear, "moved": moved, "cases": {"a": a, "b": b, "c": c, "d": d},
            "calls": calls, "coupons": {"a": coupon_a, "b": coupon_b, "alone": coupon_alone}, "feedback": feedback,
            "customers": {"lapsed": lapsed, "cancelled": cancelled, "a": a.customer, "c": c.customer}}


@pytest.fixture
def manager_client(manager) -> Client:
    client = Client()
    client.force_login(manager)
    return client


def links(page: str) -> list[tuple[str, str, str, int]]:
    """(key, period, href, the number shown) of every count's link on the page; a predicted pool's link is
    its sentence ("2 customers, mean ..."), its count in data-count."""
    out = []
    for href, text in re.findall(r'<a href="([^"]+)" class="kpi-drill[^"]*"[^>]*>([\d,]+)</a>', page):
        out.append((html.unescape(href), int(text.replace(",", ""))))
    for href, n in re.findall(r'<a href="([^"]+)" class="kpi-drill-count"[^>]*data-count="(\d+)"', page):
        out.append((html.unescape(href), int(n)))
    result = []
    for href, shown in out:
        query = parse_qs(urlsplit(href).query)
        result.append((query["kpi"][0], query.get("period", [""])[0], href, shown))
    return result


def listed(client: Client, href: str) -> set[int]:
    response = client.get(href)
    assert response.status_code == 200, href
    assert not [m for m in response.context["messages"] if m.level_tag == "error"], href
    cl = response.context["cl"]
    return {obj.pk for obj in cl.queryset}


def expected_rows(h: dict) -> dict[str, set[int]]:
    """The rows each newly linked count of March counts, by hand."""
    calls, cases, coupons, fb = h["calls"], h["cases"], h["coupons"], h["feedback"]
    ana, ben = h["ana"].pk, h["ben"].pk
    ids = lambda *names: {calls[n].pk for n in names}  # noqa: E731
    return {
        f"agent_cases_worked:{ana}": {cases["a"].pk, cases["b"].pk},
        f"agent_cases_worked:{ben}": {cases["b"].pk, cases["c"].pk},
        f"agent_contacts:{ana}": ids("a1", "a2", "a3", "b2"), f"agent_contacts:{ben}": ids("b1", "b3", "c1"),
        "agent_contacts:team": ids("a1", "a2", "a3", "b1", "b2", "b3", "c1"),
        f"agent_callbacks_due:{ana}": ids("a2"), f"agent_callbacks_due:{ben}": ids("b3"),
        "agent_callbacks_due:team": ids("a2", "b3"),
        f"agent_callbacks_kept:{ana}": ids("a2"), f"agent_callbacks_kept:{ben}": set(),
        "agent_callbacks_kept:team": ids("a2"),
        f"agent_offers:{ana}": ids("a3"), f"agent_offers:{ben}": ids("b3"), "agent_offers:team": ids("a3", "b3"),
        f"agent_redemptions:{ana}": ids("a3"), f"agent_redemptions:{ben}": set(), "agent_redemptions:team": ids("a3"),
        f"agent_wins:{ana}": {cases["a"].pk}, f"agent_wins:{ben}": {cases["c"].pk},
        "agent_wins:team": {cases["a"].pk, cases["c"].pk},
        f"reason:{h['dear'].pk}": ids("b1"), f"reason:{h['moved'].pk}": ids("b2", "c1"),
        "coupons:issued": {coupons["a"].pk, coupons["b"].pk, coupons["alone"].pk}, "coupons:redeemed": {coupons["a"].pk},
        "feedback:nps": {fb[n].pk for n in ("nps10", "nps9", "nps7", "nps3")},
        "feedback:nps_promoters": {fb["nps10"].pk, fb["nps9"].pk}, "feedback:nps_detractors": {fb["nps3"].pk},
        "feedback:csat": {fb["csat5"].pk, fb["csat2"].pk}, "feedback:csat_satisfied": {fb["csat5"].pk},
        "feedback:ces": {fb["ces3"].pk, fb["ces6"].pk},
        "predicted:lapsed": {h["customers"]["lapsed"].pk, h["customers"]["cancelled"].pk},
        "predicted:won_back": {h["customers"]["c"].pk, h["customers"]["a"].pk},
        "predicted:base": {h["customers"][n].pk for n in ("lapsed", "cancelled", "a", "c")},
    }


@pytest.mark.parametrize("stored", [False, True], ids=["live", "from the snapshot"])
def test_every_table_count_opens_exactly_the_rows_it_counts(manager_client, march, stored):
    # Given March's page, computed live or from its snapshot
    if stored:
        metrics_refresh(periods=[MARCH])
    page = manager_client.get(KPIS, {"month": "2026-03"}).content.decode()
    found = links(page)
    in_march = {key: (href, shown) for key, period, href, shown in found if period in (PERIOD, "")}
    expected = expected_rows(march)
    # Then every count of the agents and reasons tables, coupons, feedback and the pools has its list
    assert set(expected) <= set(in_march), sorted(set(expected) - set(in_march))
    # And each list holds exactly the rows the count counts, as many as the number shown
    for key, rows in expected.items():
        href, shown = in_march[key]
        assert listed(manager_client, href) == rows, key
        assert shown == len(rows), key
    # And every other new link (the reasons' monthly trend too) is as long as its number
    for key, _period, href, shown in found:
        if key.split(":")[0] in ("reason", "coupons", "feedback", "predicted") or key.startswith("agent_"):
            assert len(listed(manager_client, href)) == shown, href


def test_the_reasons_trend_opens_each_months_calls(manager_client, march):
    page = manager_client.get(KPIS, {"month": "2026-03"}).content.decode()
    trend = {(key, period): (href, shown) for key, period, href, shown in links(page) if period != PERIOD}
    href, shown = trend[(f"reason:{march['dear'].pk}", "2026-02-01..2026-03-01")]
    assert shown == 1 and listed(manager_client, href) == {march["calls"]["feb"].pk}


def test_what_is_not_a_count_of_rows_has_no_list(manager_client, march):
    page = manager_client.get(KPIS, {"month": "2026-03"}).content.decode()
    keys = {key for key, *_rest in links(page)}
    # The team's cases worked add up the agents' (case B twice): no list is that long
    assert "agent_cases_worked:team" not in keys
    team = re.search(r'<tr data-agent="Team">(.*?)</tr>', page, re.S).group(1)
    assert re.findall(r"<td>(\d+)</td>", team)[0] == "4"  # 2 + 2, while three cases were worked
    # Rates, revenue and the CES numerator (a sum of scores) stay plain numbers
    assert not [k for k in keys if k.startswith(("agent_reach_rate", "agent_reactivated_revenue"))]
    ces = re.search(r'id="kpi-card-ces".*?</details>', page, re.S).group(0)
    assert re.search(r'<span class="kpi-inputs">9 of <a ', ces), ces


@pytest.mark.parametrize("params, message", [
    ({"kpi": "agent_wins:abc"}, "'abc' is not an agent: use an agent's id or 'team'."),
    ({"kpi": "agent_wins:987654"}, "There is no user with id 987654."),
    ({"kpi": "agent_cases_worked:team"}, "The team's cases worked add up each agent's cases"),
    ({"kpi": "agent_wins"}, "'agent_wins' is not a figure listed here."),
    ({"kpi": "agent_wins:team", "period": "2026-03-01..2026-13-01"}, "is not a period"),
])
def test_a_bad_agent_key_says_what_is_wrong_and_lists_nothing(manager_client, march, params, message):
    response = manager_client.get("/admin/winback/winbackcase/", {"period": PERIOD, **params})
    assert response.context["cl"].result_count == 0
    assert message in html.unescape(response.content.decode())


@pytest.mark.parametrize("url, params, message", [
    ("/admin/winback/disposition/", {"kpi": "reason:x1"}, "'x1' is not a reason for leaving: use its id."),
    ("/admin/winback/disposition/", {"kpi": "reason:987654"}, "There is no reason for leaving with id 987654."),
    ("/admin/winback/disposition/", {"kpi": "agent_wins:team"}, "'agent_wins:team' is not a figure listed here."),
    ("/admin/winback/coupon/", {"kpi": "feedback:nps"}, "'feedback:nps' is not a figure listed here."),
    ("/admin/crm/feedback/", {"kpi": "feedback:nps_all"}, "'feedback:nps_all' is not a figure listed here."),
])
def test_a_bad_key_on_the_other_lists_says_what_is_wrong_and_lists_nothing(manager_client, march, url, params, message):
    response = manager_client.get(url, {"period": PERIOD, **params})
    assert response.context["cl"].result_count == 0
    assert message in html.unescape(response.content.decode())


def test_the_lists_without_a_figure_are_unchanged(manager_client, march):
    assert manager_client.get("/admin/winback/disposition/").context["cl"].result_count == 9
    assert manager_client.get("/admin/winback/coupon/").context["cl"].result_count == 4
    assert manager_client.get("/admin/crm/feedback/").context["cl"].result_count == Feedback.objects.count() == 9


def test_the_list_names_the_agent_and_the_reason(manager_client, march):
    page = manager_client.get("/admin/winback/winbackcase/", {"kpi": f"agent_wins:{march['ana'].pk}",
                                                              "period": PERIOD}).content.decode()
    assert "Win-back cases won, credited to ana, 2026-03-01 .. 2026-04-01" in html.unescape(page)
    page = manager_client.get("/admin/winback/disposition/", {"kpi": f"reason:{march['moved'].pk}",
                                                              "period": PERIOD}).content.decode()
    assert "Calls that recorded the reason Moved away" in html.unescape(page)
