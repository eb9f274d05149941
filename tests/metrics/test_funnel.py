"""The win-back funnel and the win-back conversion rate (docs/metrics.md s.6), on a hand-built March."""

import datetime as dt
import html
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from rest_framework.test import APIClient

from crm.models import Contact
from metrics.models import MetricSnapshot
from metrics.services.calculators import metrics_compute
from metrics.services.funnel import funnel_part_cases
from metrics.services.periods import month_of
from metrics.services.program import agent_table
from metrics.services.snapshots import metrics_refresh
from tests.factories import CustomerFactory, UserFactory
from tests.metrics.conftest import at
from winback.models import Coupon, Disposition, DormancyPolicy, WinbackCase

pytestmark = pytest.mark.django_db
MARCH = month_of(dt.date(2026, 3, 1))
KPIS = "/admin/metrics/metricsnapshot/"
STAGES = ["opened", "callable", "attempted", "reached", "offered", "redeemed", "reactivated"]
PHONE = "+33612345678"


def case(phone: str = PHONE, opened: dt.datetime = at(2026, 3, 2), **fields) -> WinbackCase:
    customer = CustomerFactory(phone=phone, **fields.pop("customer", {}))
    return WinbackCase.objects.create(customer=customer, lapsed_at=opened, opened_at=opened, **fields)


def call(c: WinbackCase, agent, when: dt.datetime, outcome: str) -> Disposition:
    contact = Contact.objects.create(customer=c.customer, channel="call", occurred_at=when, agent=agent, outcome=outcome)
    return Disposition.objects.create(case=c, agent=agent, contact=contact, outcome=outcome, created_at=when)


def coupon(c: WinbackCase, redeemed: bool = False) -> Coupon:
    return Coupon.objects.create(code=f"BACK-{c.pk}", customer=c.customer, case=c, issued_at=at(2026, 3, 6),
                                 redeemed_at=at(2026, 3, 9) if redeemed else None)


def close(c: WinbackCase, status: str, when: dt.datetime) -> None:
    WinbackCase.objects.filter(pk=c.pk).update(status=status, closed_at=when)


@pytest.fixture
def march() -> dict:
    """Ten win-back cases opened in March, by hand:
    h1 holdout, back 5 days after opening (inside the 30-day window); h2 holdout, back after 40 days (outside);
    nophone: no phone; dnc: on do-not-call before the case opened;
    idle: callable, never called; c6: no answer (Ana), lost; c7: Ana no answer then Ben declined;
    c8: Ben reached, coupon not redeemed, won by the contact; c9: Ana reached, coupon redeemed, won;
    c10: Ana reached, asked for do-not-call on the call (after opening: still callable), open.
    Not counted: a care call, a void case, a case opened in February.

      opened 10; callable 6 (10 - 2 holdout - nophone - dnc); attempted 5 (all but idle);
      reached 4 (c7 c8 c9 c10); offered 2 (c8 c9); redeemed 1 (c9); reactivated 1 (c9, won)
      shares: 6/10, 5/6, 4/5, 2/4, 1/2, 1/1; conversion: won callable (c8, c9) 2 / 6; holdout 1 / 2
      per agent (last call): Ana c6 c9 c10, 1 won of 3; Ben c7 c8, 1 won of 2; team 2 of 5."""
    DormancyPolicy.objects.create(attribution_window_days=30, note="test")
    ana, ben = UserFactory(username="ana"), UserFactory(username="ben")
    c = {
        "h1": case(holdout=True), "h2": case(holdout=True), "nophone": case(phone=""),
        "dnc": case(customer={"do_not_call_since": at(2026, 2, 1)}), "idle": case(),
        "c6": case(), "c7": case(), "c8": case(), "c9": case(), "c10": case(),
    }
    close(c["h1"], "returned", at(2026, 3, 7))
    close(c["h2"], "returned", at(2026, 4, 11))
    call(c["c6"], ana, at(2026, 3, 3), "no_answer")
    close(c["c6"], "lost", at(2026, 3, 25))
    call(c["c7"], ana, at(2026, 3, 3), "no_answer")
    call(c["c7"], ben, at(2026, 3, 4), "reached_declined")
    call(c["c8"], ben, at(2026, 3, 5), "reached_will_return")
    coupon(c["c8"])
    close(c["c8"], "won", at(2026, 3, 10))
    call(c["c9"], ana, at(2026, 3, 5), "reached_will_return")
    coupon(c["c9"], redeemed=True)
    close(c["c9"], "won", at(2026, 3, 9))
    call(c["c10"], ana, at(2026, 3, 5), "do_not_call")
    c["c10"].customer.do_not_call_since = at(2026, 3, 5)
    c["c10"].customer.save(update_fields=["do_not_call_since"])
    case(kind="care")
    case(status="void")
    case(opened=at(2026, 2, 20))
    return {"cases": c, "ana": ana, "ben": ben}


EXPECTED = {"opened": 10, "callable": 6, "attempted": 5, "reached": 4, "offered": 2, "redeemed": 1, "reactivated": 1}
SHARES = {"opened": None, "callable": 6 / 10, "attempted": 5 / 6, "reached": 4 / 5, "offered": 2 / 4,
          "redeemed": 1 / 2, "reactivated": 1.0}


def test_each_stage_counts_and_shares_as_worked_by_hand(march):
    # When March's figures are computed
    f = metrics_compute(periods=[MARCH])[MARCH]
    # Then each stage has its count and its share of the stage before
    assert {s: f[f"funnel_{s}"].value for s in STAGES} == EXPECTED
    for stage in STAGES:
        assert f[f"funnel_{stage}"].extra["share"] == pytest.approx(SHARES[stage]) if SHARES[stage] else \
            f[f"funnel_{stage}"].extra["share"] is None
    # And the conversion counts every callable case won (c8 won without redeeming), the holdout beside it
    conversion = f["winback_conversion_rate"]
    assert (conversion.numerator, conversion.denominator, conversion.value) == (2, 6, pytest.approx(1 / 3))
    held = f["funnel_holdout_reactivation"]
    assert (held.numerator, held.denominator, held.value) == (1, 2, 0.5)
    assert conversion.inputs() == "2 of 6"


def test_several_periods_in_one_pass_match_each_alone(march):
    # Given February (one case) and March computed together
    february = month_of(dt.date(2026, 2, 1))
    both = metrics_compute(periods=[february, MARCH])
    # Then each is what it is alone
    assert both[february]["funnel_opened"].value == 1 and both[february]["funnel_callable"].value == 1
    assert both[MARCH]["funnel_callable"].value == 6


def test_no_callable_case_leaves_the_conversion_na():
    # Given only a holdout case and a case without a phone in March
    case(holdout=True)
    case(phone="")
    f = metrics_compute(periods=[MARCH])[MARCH]
    # Then the funnel stops at the cases opened and the conversion has no denominator
    assert f["funnel_opened"].value == 2 and f["funnel_callable"].value == 0
    assert f["funnel_attempted"].extra["share"] is None
    assert f["winback_conversion_rate"].value is None and f["winback_conversion_rate"].denominator == 0
    assert f["funnel_holdout_reactivation"].value == 0.0


def test_no_case_at_all_is_na_everywhere():
    f = metrics_compute(periods=[MARCH])[MARCH]
    assert f["funnel_opened"].value == 0
    assert f["winback_conversion_rate"].value is None and f["funnel_holdout_reactivation"].value is None


def test_conversion_per_agent_is_credited_to_the_last_call(march):
    rows = {r["agent"]: r for r in agent_table(period=MARCH, live=True)}
    assert rows["ana"]["conversion"] == pytest.approx(1 / 3)
    assert rows["ben"]["conversion"] == pytest.approx(1 / 2)
    assert rows["Team"]["conversion"] == pytest.approx(2 / 5)


def test_each_stage_lists_its_own_cases(march):
    c = march["cases"]
    ids = lambda *names: {c[n].pk for n in names}  # noqa: E731
    expected = {
        "opened": ids(*c), "callable": ids("idle", "c6", "c7", "c8", "c9", "c10"),
        "attempted": ids("c6", "c7", "c8", "c9", "c10"), "reached": ids("c7", "c8", "c9", "c10"),
        "offered": ids("c8", "c9"), "redeemed": ids("c9"), "reactivated": ids("c9"),
        "converted": ids("c8", "c9"), "holdout": ids("h1", "h2"), "holdout_back": ids("h1"),
    }
    for part, rows in expected.items():
        assert set(funnel_part_cases(part=part, period=MARCH).values_list("pk", flat=True)) == rows, part


@pytest.fixture
def manager_client(manager) -> Client:
    client = Client()
    client.force_login(manager)
    return client


def test_the_page_draws_the_funnel_and_each_bar_opens_its_cases(manager_client, march):
    page = manager_client.get(KPIS, {"month": "2026-03"}).content.decode()
    bars = re.findall(r'<li class="kpi-funnel-stage" data-stage="(\w+)" data-count="(\d+)">.*?'
                      r'<a href="([^"]+)" class="kpi-funnel-bar kpi-w-(\d+)"', page, re.S)
    assert [(s, int(n)) for s, n, _h, _w in bars] == list(EXPECTED.items())
    # Widths follow the counts against the cases opened (whole percent)
    assert [int(w) for *_rest, w in bars] == [100, 60, 50, 40, 20, 10, 10]
    for stage, n, href, _w in bars:
        response = manager_client.get(html.unescape(href))
        assert response.status_code == 200
        assert parse_qs(urlsplit(html.unescape(href)).query)["kpi"] == [f"funnel:{stage}"]
        assert response.context["cl"].result_count == int(n), stage
    assert 'data-drill="funnel:converted">2</a>' in page and 'data-drill="funnel:holdout">2</a>' in page


def test_snapshot_and_api_carry_the_stages(manager, march):
    # Given March stored
    metrics_refresh(periods=[MARCH])
    stored = dict(MetricSnapshot.objects.filter(start=MARCH.start, metric__startswith="funnel_")
                  .values_list("metric", "value"))
    assert {s: int(stored[f"funnel_{s}"]) for s in STAGES} == EXPECTED
    assert float(MetricSnapshot.objects.get(start=MARCH.start, metric="winback_conversion_rate").numerator) == 2
    # When the API is asked for March
    client = APIClient()
    client.force_authenticate(manager)
    body = client.get("/api/metrics/", {"month": "2026-03"}).json()
    assert body["source"] == "snapshot"
    assert {s: body["metrics"][f"funnel_{s}"]["value"] for s in STAGES} == EXPECTED
    assert body["metrics"]["funnel_callable"]["share"] == pytest.approx(0.6)
    assert body["metrics"]["winback_conversion_rate"]["value"] == pytest.approx(1 / 3)
    series = client.get("/api/metrics/series/", {"metric": "funnel_reached", "start": "2026-03-01",
                                                 "end": "2026-04-01"}).json()
    assert [p["value"] for p in series["points"]] == [4]


def test_the_csv_exports_carry_the_stages_and_the_agents_conversion(manager_client, march):
    # When the headline and agents CSVs of March are downloaded
    headline = manager_client.get(KPIS + "csv/headline/", {"month": "2026-03"}).content.decode()
    rows = {line.split(",")[0]: line.split(",") for line in headline.splitlines()[1:]}
    # Then each stage is a row with its count and the stage before, the conversion with its inputs
    assert [rows[f"funnel_{s}"][2] for s in STAGES] == [str(n) for n in EXPECTED.values()]
    assert rows["funnel_callable"][3:5] == ["6", "10"]
    assert rows["winback_conversion_rate"][3:5] == ["2", "6"]
    agents = manager_client.get(KPIS + "csv/agents/", {"month": "2026-03"}).content.decode().splitlines()
    header = agents[0].split(",")
    team = [line for line in agents if line.startswith("Team,")][0].split(",")
    assert float(team[header.index("conversion")]) == pytest.approx(0.4)
