"""Every count and rate of docs/metrics.md sections 2-3 for any periods [S, E), in SQL.

The lifecycle counts all come from one table of state changes, built once for however many periods are
asked for: every acquired, reactivated, lapsed and cancelled event, with whether the customer is active
after it and when their next state change happens (window functions, PostgreSQL and SQLite alike). A
customer's state at an instant x is that of their last change strictly before x, so:

  CS  = changes with active_after, t < S and (no next change or next_t >= S)
  L0  = changes with active_after, t < S and S <= next_t < E   (the next change of an active customer is a lapse)
  CN  = acquired changes with S <= t < E;  Ln = those with next_t < E
  R   = distinct customers with a reactivated change in [S, E)
  LP  = changes without active_after, t < S and (no next change or next_t >= S)
  RP  = customers of R whose state at S is such a change
  CE  = CS at E
"""

import datetime as dt
import math
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import DateTimeField, ExpressionWrapper, OuterRef, Subquery, Sum
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from psycopg import sql

from core.dialect import is_postgresql
from core.selectors import business_settings
from core.sql import render
from crm.models import Customer, Order
from metrics.services.charts import number_text
from metrics.services.definitions import ALL
from metrics.services.funnel import figures_add
from metrics.services.periods import Period
from metrics.sql import (
    CHANGES, CHANGES_OF_CUSTOMERS, PERIOD_REPEAT_BUYERS, PERIOD_REVENUE, PERIOD_REVENUE_BY_CUSTOMER,
    PROGRAM_CASES, PROGRAM_COUPONS, PROGRAM_FEEDBACK, REACTIVATED_FROM_POOL, REACTIVATED_IN_PERIOD,
)
from winback.models import DormancyPolicy, WinbackCase

CONVERSATION_OUTCOMES = ("reached_will_return", "reached_declined", "callback_requested", "complaint_escalated", "do_not_call")


@dataclass
class Figure:
    name: str
    value: float | None  # None: n/a (a zero denominator)
    numerator: float | None = None
    denominator: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def definition(self) -> str:
        return ALL[self.name].formula

    @property
    def label(self) -> str:
        return ALL[self.name].label

    @property
    def unit(self) -> str:
        return ALL[self.name].unit

    def inputs(self) -> str:
        """The inputs in words, e.g. "15 of 500", each a whole translated sentence with its numbers."""
        x = self.extra
        if self.name == "historical_clv" and x.get("arpa") is not None and x.get("churn_rate"):
            # Translators: how a historical customer lifetime value is computed, e.g.
            # "ARPA 12.50 x margin 30% / churn 2.5%"; ARPA is the average revenue per account.
            return _("ARPA %(arpa)s x margin %(margin)s / churn %(churn)s") % {
                "arpa": number_text(x["arpa"], decimals=2), "margin": _percent(x["margin"], 0),
                "churn": _percent(x["churn_rate"], 1)}
        if self.name == "lost_profit" and x.get("profit_per_customer") is not None:
            # Translators: how the lost profit is computed, e.g. "12 lost x 4.50 profit per customer".
            return _("%(lost)s lost x %(profit)s profit per customer") % {
                "lost": _fmt(self.numerator), "profit": number_text(x["profit_per_customer"], decimals=2)}
        if self.name == "incremental_reactivation" and "contacted" in x:
            c, h = x["contacted"], x["holdout"]
            return _("contacted %(contacted_back)s of %(contacted)s, holdout %(holdout_back)s of %(holdout)s") % {
                "contacted_back": number_text(c["reactivated"]), "contacted": number_text(c["cases"]),
                "holdout_back": number_text(h["reactivated"]), "holdout": number_text(h["cases"])}
        if self.name == "revenue_won_back" and "cases" in x:
            return ngettext("%(n)s case won", "%(n)s cases won", x["cases"]) % {"n": number_text(x["cases"])}
        if self.name == "nps" and x.get("responses"):
            return ngettext("%(promoters)s promoters, %(detractors)s detractors of %(responses)s response",
                            "%(promoters)s promoters, %(detractors)s detractors of %(responses)s responses",
                            x["responses"]) % {
                "promoters": number_text(x["promoters"]), "detractors": number_text(x["detractors"]),
                "responses": number_text(x["responses"])}
        if self.name in _ACQUISITION_INPUTS:
            return _ACQUISITION_INPUTS[self.name](self)
        if self.numerator is None or self.denominator is None:
            return ""
        # Translators: a rate's inputs, e.g. "15 of 500".
        return _("%(part)s of %(whole)s") % {"part": _fmt(self.numerator), "whole": _fmt(self.denominator)}

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "numerator": self.numerator, "denominator": self.denominator,
                "definition": self.definition, "label": self.label, "unit": self.unit,
                "good_direction": ALL[self.name].good_direction, **self.extra}


def _cac_inputs(f: "Figure") -> str:
    if f.extra.get("spend") is None:
        return _("no acquisition spend entered for the period")
    n = int(f.denominator or 0)
    # Translators: how CAC is computed, e.g. "spend 1,000.00 over 4 new customers".
    return ngettext("spend %(spend)s over %(n)s new customer", "spend %(spend)s over %(n)s new customers", n) % {
        "spend": number_text(f.extra["spend"], decimals=2), "n": number_text(n)}


def _clv_cac_inputs(f: "Figure") -> str:
    if f.numerator is None or f.denominator is None:
        return ""
    # Translators: how the CLV : CAC ratio is computed, e.g. "CLV 900.00 / CAC 250.00".
    return _("CLV %(clv)s / CAC %(cac)s") % {"clv": number_text(f.numerator, decimals=2),
                                            "cac": number_text(f.denominator, decimals=2)}


def _predicted_clv_cac_inputs(f: "Figure") -> str:
    n = f.extra.get("predicted_customers", 0)
    if not n:
        # The card is n/a until the nightly fit gives the period's new customers a predicted CLV.
        return _("no new customer of the period has a predicted CLV (no usable purchase-model fit yet)")
    if f.numerator is None or f.denominator is None:
        return ""
    # Translators: how the predicted CLV : CAC ratio is computed, e.g. "mean predicted CLV 310.00 of 4 new
    # customers / CAC 250.00".
    return ngettext("mean predicted CLV %(clv)s of %(n)s new customer / CAC %(cac)s",
                    "mean predicted CLV %(clv)s of %(n)s new customers / CAC %(cac)s", n) % {
        "clv": number_text(f.numerator, decimals=2), "n": number_text(n), "cac": number_text(f.denominator, decimals=2)}


def _payback_inputs(f: "Figure") -> str:
    x = f.extra
    if f.numerator is None or x.get("arpa") is None:
        return ""
    # Translators: how the CAC payback is computed, e.g. "CAC 250.00 / (ARPA 100.00 x margin 30%)"; ARPA is the
    # average revenue per account.
    return _("CAC %(cac)s / (ARPA %(arpa)s x margin %(margin)s)") % {
        "cac": number_text(f.numerator, decimals=2), "arpa": number_text(x["arpa"], decimals=2),
        "margin": _percent(x["margin"], 0)}


_ACQUISITION_INPUTS = {"cac": _cac_inputs, "clv_cac_ratio": _clv_cac_inputs,
                       "clv_cac_ratio_predicted": _predicted_clv_cac_inputs, "cac_payback": _payback_inputs}


def _fmt(x: float) -> str:
    return number_text(x, decimals=0 if float(x).is_integer() else 2)


def _percent(fraction: float, decimals: int) -> str:
    # Translators: a percentage, e.g. "12.5%"; %(value)s is the number (it may carry a sign).
    return _("%(value)s%%") % {"value": number_text(fraction * 100, decimals=decimals)}


def _ratio(name: str, num: float | Decimal | None, den: float | Decimal | None, **extra) -> Figure:
    num = float(num or 0)
    den = float(den or 0)
    return Figure(name, num / den if den else None, num, den, extra)


def _count(name: str, value: int) -> Figure:
    return Figure(name, float(value), float(value), None)


# --- The state-change table -----------------------------------------------------------------------------

def customer_range_params(customers: tuple[int | None, int | None]) -> dict[str, int]:
    """A part's customers lo <= id < hi as statement parameters (None: unbounded on that side)."""
    lo, hi = customers
    return {"lo": 0 if lo is None else lo, "hi": 2**63 - 1 if hi is None else hi}


def _build_changes(cur, *, customers: tuple[int | None, int | None] = (None, None), indexed: bool = True) -> None:
    """m_changes of every customer, or of those with ``lo <= id < hi`` (a refresh's part; None: no bound);
    ``indexed`` for the statements of single periods (the month sums read it whole, grouped)."""
    pg = is_postgresql()
    lo, hi = customers
    cur.execute("DROP TABLE IF EXISTS m_changes")
    if lo is None and hi is None:
        cur.execute(CHANGES)
    else:
        cur.execute(CHANGES_OF_CUSTOMERS, customer_range_params(customers))
    if indexed:
        cur.execute("CREATE INDEX m_changes_t ON m_changes (t)")
        cur.execute("CREATE INDEX m_changes_customer ON m_changes (customer_id, t)")
        cur.execute("CREATE INDEX m_changes_next ON m_changes (next_t)")
        if pg:
            cur.execute("ANALYZE m_changes")


def _revenue_churn(cur, q: dict[str, Any], per_customer: str) -> tuple:
    """(rev(P-1), lost, gained) summed over the customers active at S (CS at S); ``per_customer`` selects
    each customer's (customer_id, prev, cur) revenue."""
    cur.execute(render(
        "SELECT COALESCE(sum(r.prev), 0),"
        "       COALESCE(sum(CASE WHEN r.prev > r.cur THEN r.prev - r.cur ELSE 0 END), 0),"
        "       COALESCE(sum(CASE WHEN r.cur > r.prev THEN r.cur - r.prev ELSE 0 END), 0)"
        " FROM (SELECT customer_id FROM m_changes"
        "       WHERE active_after = true AND t < %(s)s AND (next_t IS NULL OR next_t >= %(s)s)) cs"
        " JOIN ({per_customer}) r ON r.customer_id = cs.customer_id", per_customer=per_customer), q)
    return cur.fetchone()


def _adapt(x: dt.datetime):
    return connection.ops.adapt_datetimefield_value(x)


def _days_between(a: str, b: str) -> sql.Composable:
    template = "EXTRACT(EPOCH FROM ({a} - {b})) / 86400.0" if is_postgresql() else "(julianday({a}) - julianday({b}))"
    return sql.SQL(template).format(a=sql.Identifier(*a.split(".")), b=sql.Identifier(*b.split(".")))


def _bucket_sql(column: str) -> sql.Composable:
    """How many of the periods' boundaries (m_bounds) are at or before ``column``; NULL for NULL."""
    if is_postgresql():
        return sql.SQL("width_bucket({col}, %(bounds)s::timestamptz[])").format(col=sql.Identifier(column))
    return sql.SQL("CASE WHEN {col} IS NULL THEN NULL ELSE (SELECT count(*) FROM m_bounds b WHERE b.at <= {col}) END"
                   ).format(col=sql.Identifier(column))


def _lifecycle_counts(cur, periods: list[Period], *, reactivated_from_pool: dict[Period, int] | None = None,
                      customers: tuple[int | None, int | None] = (None, None)) -> dict[Period, dict[str, Any]]:
    """CS, CN, L0, Ln, LP, CE, R, RP and the days of tenure of the lost, for any set of periods, from
    histograms of the state changes over the periods' boundaries: one grouped pass each, however many periods.

    With the boundaries sorted B_0 < B_1 < ... and a change's bucket the number of boundaries at or before
    it, "t < B_j" is "bucket(t) <= j". So for a period [B_a, B_b) and the spells (start bucket sb, end
    bucket eb, none while the spell is open) of active customers (docs/metrics.md s.2):
      CS = sb <= a and (no eb or eb > a);   L0 = sb <= a and a < eb <= b;
      CN = acquired with a < sb <= b;       Ln = those with eb <= b;       CE = sb <= b and (no eb or eb > b);
    LP is CS over the inactive spells. R counts distinct customers: per bucket in one pass, by its own query
    for a period of several buckets; RP asks per period unless the caller counted it (months: monthly.py).
    The days of tenure stay exact (numeric on PostgreSQL) until the figure divides them. ``customers``: the
    range m_changes was built for (a refresh's part), so that the join reads only those customers' rows."""
    bounds = sorted({instant for p in periods for instant in p.bounds()})
    adapt = connection.ops.adapt_datetimefield_value
    params: dict[str, Any] = {}
    if is_postgresql():
        params["bounds"] = bounds
    else:
        cur.execute("DROP TABLE IF EXISTS m_bounds")
        cur.execute("CREATE TEMP TABLE m_bounds (at datetime NOT NULL)")
        cur.executemany("INSERT INTO m_bounds (at) VALUES (%s)", [(adapt(b),) for b in bounds])
    spells = {"start": _bucket_sql("t"), "end": _bucket_sql("next_t")}
    cur.execute(render("SELECT sb, eb, acquired, active, count(*) FROM ("
                       " SELECT {start} AS sb, {end} AS eb, kind = 'acquired' AS acquired, active_after AS active"
                       " FROM m_changes) x GROUP BY 1, 2, 3, 4", **spells), params)
    rows = [(int(sb), None if eb is None else int(eb), bool(acq), bool(active), n) for sb, eb, acq, active, n in cur.fetchall()]
    # A part's range on the customers too: the join then reads a range of their primary key, not the whole table.
    in_range = "" if customers == (None, None) else " AND c.id >= %(lo)s AND c.id < %(hi)s"
    cur.execute(render("SELECT sb, eb, acquired, sum(days) FROM ("
                       " SELECT {start} AS sb, {end} AS eb, s.kind = 'acquired' AS acquired, {days} AS days"
                       " FROM m_changes s JOIN {customer} c ON c.id = s.customer_id"
                       " WHERE s.active_after = true AND s.next_t IS NOT NULL{in_range}) x GROUP BY 1, 2, 3",
                       **spells, days=_days_between("s.next_t", "c.acquired_at"), customer=Customer, in_range=in_range),
                {**params, **(customer_range_params(customers) if in_range else {})})
    lost = [(int(sb), int(eb), bool(acq), days or 0) for sb, eb, acq, days in cur.fetchall()]
    # R of a period that is one bucket (a month among months): distinct customers per bucket, in one pass.
    cur.execute(render("SELECT sb, count(DISTINCT customer_id) FROM ("
                       " SELECT {start} AS sb, customer_id FROM m_changes WHERE kind = 'reactivated') x GROUP BY 1",
                       **spells), params)
    reactivated = {int(sb): n for sb, n in cur.fetchall()}
    if not is_postgresql():
        cur.execute("DROP TABLE m_bounds")

    def open_at(j: int, active: bool) -> int:
        return sum(n for sb, eb, _, act, n in rows if act == active and sb <= j and (eb is None or eb > j))

    out = {}
    index = {instant: j for j, instant in enumerate(bounds)}
    for period in periods:
        S, E = period.bounds()
        a, b = index[S], index[E]
        if b == a + 1:
            r = reactivated.get(b, 0)
        else:  # a period spanning several buckets: a customer reactivated in two of them counts once
            cur.execute(REACTIVATED_IN_PERIOD, {"s": adapt(S), "e": adapt(E)})
            r = cur.fetchone()[0]
        out[period] = {
            "CS": open_at(a, True), "CE": open_at(b, True), "LP": open_at(a, False),
            "L0": sum(n for sb, eb, _, act, n in rows if act and sb <= a and eb is not None and a < eb <= b),
            "CN": sum(n for sb, _, acq, act, n in rows if acq and a < sb <= b),
            "Ln": sum(n for sb, eb, acq, act, n in rows if acq and a < sb <= b and eb is not None and eb <= b),
            "R": r,
            "RP": (reactivated_from_pool[period] if reactivated_from_pool is not None
                   else _reactivated_from_pool(cur, S, E)),
            "tenure_sum_days": sum((days for sb, eb, acq, days in lost
                                    if (sb <= a and a < eb <= b) or (acq and a < sb <= b and eb <= b)), start=0),
        }
    return out


def _reactivated_from_pool(cur, S: dt.datetime, E: dt.datetime) -> int:
    cur.execute(REACTIVATED_FROM_POOL, {"s": _adapt(S), "e": _adapt(E)})
    return cur.fetchone()[0]


def _money_and_more(cur, S: dt.datetime, E: dt.datetime, S_prev: dt.datetime) -> dict[str, Any]:
    q = {"s": _adapt(S), "e": _adapt(E), "p": _adapt(S_prev)}
    out: dict[str, Any] = _period_revenue(cur, q)
    out.update(_program(cur, q))
    out["won_back_revenue"], out["won_back_cases"] = won_back_revenue(start=S, end=E)
    return out


def attribution_window() -> dt.timedelta:
    """The newest dormancy policy's attribution window (30 days before any policy exists)."""
    days = DormancyPolicy.objects.order_by("-id").values_list("attribution_window_days", flat=True).first()
    return dt.timedelta(days=days or 30)


def won_back_cases(*, start: dt.datetime, end: dt.datetime):
    """Win-back cases (not care calls) closed as won in [start, end). Index: case_status_closed."""
    return WinbackCase.objects.filter(kind=WinbackCase.Kind.WINBACK, status=WinbackCase.Status.WON,
                                      closed_at__gte=start, closed_at__lt=end)


def won_back_revenue(*, start: dt.datetime, end: dt.datetime) -> tuple[float, int]:
    """(revenue won back, cases won) in [start, end): each won case's customer's orders from the case's close
    (the winning order) to the end of the attribution window, the rule of the agents' table."""
    window = attribution_window()
    in_window = (Order.objects.filter(
        customer=OuterRef("customer_id"), ordered_at__gte=OuterRef("closed_at"),
        ordered_at__lt=ExpressionWrapper(OuterRef("closed_at") + window, output_field=DateTimeField()))
        .order_by().values("customer").annotate(s=Sum("amount")).values("s"))
    amounts = list(won_back_cases(start=start, end=end).annotate(revenue=Subquery(in_window))
                   .values_list("revenue", flat=True))
    return float(sum(a or Decimal("0") for a in amounts)), len(amounts)


def _period_revenue(cur, q: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cur.execute(PERIOD_REVENUE, q)
    out["revenue"], out["buyers"] = cur.fetchone()
    cur.execute(PERIOD_REPEAT_BUYERS, q)
    out["repeat_buyers"] = cur.fetchone()[0]
    # Revenue churn over the customers active at S: their revenue in P-1 against P.
    out["rev_prev"], out["rev_lost"], out["rev_gained"] = _revenue_churn(cur, q, PERIOD_REVENUE_BY_CUSTOMER)
    return out


def _program(cur, q: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cur.execute(PROGRAM_CASES, q)
    (out["cases_won"], out["cases_closed"], out["treated"], out["treated_back"], out["held"],
     out["held_back"]) = (int(x or 0) for x in cur.fetchone())
    cur.execute(PROGRAM_COUPONS, q)
    out["coupons"], out["redeemed"] = (int(x or 0) for x in cur.fetchone())
    cur.execute(PROGRAM_FEEDBACK, q)
    out["feedback"] = {kind: (n, total, promoters, detractors, satisfied) for kind, n, total, promoters, detractors, satisfied in cur.fetchall()}
    return out


def _two_proportion_ci(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float] | None:
    if not n1 or not n2:
        return None
    p1, p2 = x1 / n1, x2 / n2
    half = 1.959964 * math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    return p1 - p2 - half, p1 - p2 + half


def _figures(c: dict[str, Any], m: dict[str, Any], margin: float) -> dict[str, Figure]:
    cs, l0, ln, cn, ce = c["CS"], c["L0"], c["Ln"], c["CN"], c["CE"]
    revenue = float(m["revenue"])
    f: dict[str, Figure] = {k: _count(k, c[k]) for k in ("CS", "CN", "L0", "Ln", "R", "LP", "RP", "CE")}
    f["churn_rate"] = _ratio("churn_rate", l0, cs)
    f["churn_rate_incl_new"] = _ratio("churn_rate_incl_new", l0 + ln, cs)
    f["retention_rate"] = _ratio("retention_rate", ce - cn, cs)
    f["growth_rate"] = _ratio("growth_rate", ce - cs, cs, net_adds=ce - cs)
    f["reactivation_rate"] = _ratio("reactivation_rate", c["RP"], c["LP"])
    f["case_win_rate"] = _ratio("case_win_rate", m["cases_won"], m["cases_closed"])
    t_rate = m["treated_back"] / m["treated"] if m["treated"] else None
    h_rate = m["held_back"] / m["held"] if m["held"] else None
    ci = _two_proportion_ci(m["treated_back"], m["treated"], m["held_back"], m["held"])
    f["incremental_reactivation"] = Figure(
        "incremental_reactivation", t_rate - h_rate if ci else None, None, None,
        {"contacted": {"reactivated": m["treated_back"], "cases": m["treated"], "rate": t_rate},
         "holdout": {"reactivated": m["held_back"], "cases": m["held"], "rate": h_rate},
         "ci95": list(ci) if ci else None})
    f["repeat_purchase_rate"] = _ratio("repeat_purchase_rate", m["repeat_buyers"], m["buyers"])
    nps = m["feedback"].get("nps", (0, 0, 0, 0, 0))
    f["nps"] = Figure("nps", 100.0 * (nps[2] - nps[3]) / nps[0] if nps[0] else None, float(nps[2] - nps[3]), float(nps[0]),
                      {"promoters": nps[2], "detractors": nps[3], "responses": nps[0]})
    csat = m["feedback"].get("csat", (0, 0, 0, 0, 0))
    f["csat"] = _ratio("csat", csat[4], csat[0])
    f["csat_mean"] = _ratio("csat_mean", csat[1], csat[0])
    ces = m["feedback"].get("ces", (0, 0, 0, 0, 0))
    f["ces"] = _ratio("ces", ces[1], ces[0])
    f["coupon_redemption_rate"] = _ratio("coupon_redemption_rate", m["redeemed"], m["coupons"])
    rev_prev, lost, gained = float(m["rev_prev"]), float(m["rev_lost"]), float(m["rev_gained"])
    f["gross_revenue_churn"] = _ratio("gross_revenue_churn", lost, rev_prev)
    f["net_revenue_churn"] = _ratio("net_revenue_churn", lost - gained, rev_prev)
    f["sales_per_customer"] = _ratio("sales_per_customer", revenue, m["buyers"])
    f["tenure_lost_days"] = _ratio("tenure_lost_days", c["tenure_sum_days"], l0 + ln)
    arpa = revenue / cs if cs else None
    churn = l0 / cs if cs else None
    f["historical_clv"] = Figure("historical_clv", arpa * margin / churn if arpa is not None and churn else None,
                                 None, None, {"arpa": arpa, "margin": margin, "churn_rate": churn})
    profit_per_customer = margin * revenue / cs if cs else None
    f["lost_profit"] = Figure("lost_profit", (l0 + ln) * profit_per_customer if profit_per_customer is not None else None,
                              float(l0 + ln), None, {"profit_per_customer": profit_per_customer, "margin": margin})
    f["new_customers"] = _count("new_customers", cn)
    f["revenue"] = Figure("revenue", revenue, revenue, None)
    f["revenue_won_back"] = Figure("revenue_won_back", m["won_back_revenue"], m["won_back_revenue"], None,
                                   {"cases": m["won_back_cases"]})
    return f


@contextmanager
def state_changes(*, customers: tuple[int | None, int | None] = (None, None), indexed: bool = True):
    """A cursor with the m_changes table built (and dropped afterwards), in one transaction; ``customers``
    (lo, hi) keeps those with lo <= id < hi (a refresh's part)."""
    with transaction.atomic(), connection.cursor() as cur:
        if is_postgresql():
            cur.execute("SET LOCAL work_mem = '256MB'")  # the month histograms hash in memory, not on disk
            cur.execute("SET LOCAL jit = off")  # compiling costs more than it saves on these statements
        _build_changes(cur, customers=customers, indexed=indexed)
        try:
            yield cur
        finally:
            cur.execute("DROP TABLE IF EXISTS m_changes")


def metrics_compute(*, periods: Iterable[Period], cur=None) -> dict[Period, dict[str, Figure]]:
    """Every figure for each period. Several months go the refresh's way (metrics/services/monthly.py: one
    pass over the orders for all of them); other periods take a few queries each."""
    periods = list(periods)
    if len(periods) > 1 and all(p.is_month() for p in periods):
        from metrics.services.monthly import months_compute  # it builds on this module: imported here

        return months_compute(months=periods)
    if cur is None:
        with state_changes() as cur:
            return metrics_compute(periods=periods, cur=cur)
    settings_row = business_settings()
    margin = float(settings_row.gross_margin)
    out: dict[Period, dict[str, Figure]] = {}
    lifecycle_counts = _lifecycle_counts(cur, periods)
    for period in periods:
        S, E = period.bounds()
        more = _money_and_more(cur, S, E, period.previous().bounds()[0])
        out[period] = _figures(lifecycle_counts[period], more, margin)
    from metrics.services.acquisition import acquisition_figures_add  # it builds on Figure: imported here, not above
    acquisition_figures_add(cur=cur, periods=periods, out=out, margin=margin, upsell_threshold=settings_row.upsell_threshold)
    figures_add(out=out, periods=periods)  # the win-back funnel and conversion, one statement for all periods
    return out


def metrics_for_period(*, period: Period) -> dict[str, Figure]:
    return metrics_compute(periods=[period])[period]
