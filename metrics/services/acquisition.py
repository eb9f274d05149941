"""Acquisition cost and order mix (docs/metrics.md section 6): CAC, CLV:CAC, CAC payback, cross-sell, up-sell
and loyalty share, for any set of periods at once.

The periods go into a small temporary table (index, S, E and the starts of the 12-month windows before S and
before E), so that each input is one grouped statement over all the periods, on PostgreSQL and SQLite alike,
rather than one statement per period. The lifecycle table m_changes (calculators.state_changes) must exist.

Choices where section 6 leaves room (also in the report of issue 17):
- Spend in P: per month, the all-channels row (blank channel) when one was entered, else the sum of the
  channels' rows (a blank channel is "all channels together", so adding it to the channels would count twice);
  a period that covers part of a month takes that month's spend in proportion to its days. "No spend entered
  for P" is no row for any month P touches. Amounts are taken in the business currency.
- Predicted CLV:CAC: the mean predicted_clv_12m of the customers acquired in P that have a prediction (from the
  latest usable fit, docs s.7), over CAC. It is the prediction as of the fit, so for a period long past it is
  what those customers are still expected to bring, not what they were expected to bring when acquired.
- Cross-sell counts only orders with at least one line of a known category, before P as in P: a customer
  whose earlier orders had no lines (or only unknown ones) is not a previous buyer, else every category would
  look new to them.
- Up-sell compares the mean order amount (all orders: lines are not needed) in P with that of the 12 calendar
  months before S; "at least" the threshold above, compared in whole cents so that exactly 20% counts.
- Loyalty counts orders (not purchase days) in the 12 calendar months before E of the customers active at E.
"""

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import connection

from core.dialect import is_postgresql
from core.sql import render
from crm.models import AcquisitionSpend, Order, OrderLine
from metrics.services.calculators import Figure, _ratio
from metrics.services.charts import format_value_html, number_text
from metrics.services.periods import Period, add_months
from predictions.models import CustomerPrediction

LOYAL_MIN_ORDERS = 3  # "at least 3 orders in the 12 months before E"
_BP = 10_000  # the up-sell threshold in basis points (it has 4 decimals), so the comparison stays in integers

# Known-category lines: each customer's first order of each category, over all time.
_FIRST_CATEGORY = render(
    "CREATE TEMP TABLE m_first_cat AS SELECT o.customer_id, l.category, min(o.ordered_at) AS first_at"
    " FROM {line} l JOIN {order} o ON o.id = l.order_id WHERE l.category <> '' GROUP BY o.customer_id, l.category",
    line=OrderLine, order=Order)
# A previous buyer at S: a known-category line ordered before S.
_BOUGHT_BEFORE = "EXISTS (SELECT 1 FROM m_first_cat b WHERE b.customer_id = {customer} AND b.first_at < p.s)"
# Cross-sell's denominator: customers with a known-category line in P who are previous buyers.
_CROSS_SELL_BASE = render(
    "SELECT p.i, count(DISTINCT o.customer_id) FROM m_acq_periods p"
    " JOIN {order} o ON o.ordered_at >= p.s AND o.ordered_at < p.e"
    " WHERE EXISTS (SELECT 1 FROM {line} l WHERE l.order_id = o.id AND l.category <> '')"
    "   AND " + _BOUGHT_BEFORE.format(customer="o.customer_id") + " GROUP BY p.i", order=Order, line=OrderLine)
# Its numerator, per category and overall: previous buyers whose first order of a category is in P.
_CROSS_SELL_NEW = (
    "SELECT p.i, {group} FROM m_acq_periods p JOIN m_first_cat n ON n.first_at >= p.s AND n.first_at < p.e"
    " WHERE " + _BOUGHT_BEFORE.format(customer="n.customer_id") + " GROUP BY {by}")
CROSS_SELL_BY_CATEGORY = _CROSS_SELL_NEW.format(group="n.category, count(*)", by="p.i, n.category")
CROSS_SELL_CUSTOMERS = _CROSS_SELL_NEW.format(group="count(DISTINCT n.customer_id)", by="p.i")
# Up-sell: per period and customer, the orders of P and of the 12 months before S; the customers with both.
UPSELL = render(
    "SELECT i, count(*),"
    "       sum(CASE WHEN round(sp * 100) * nb * %(bp)s >= (%(bp)s + %(threshold)s) * round(sb * 100) * np"
    "           THEN 1 ELSE 0 END)"
    " FROM (SELECT p.i, o.customer_id,"
    "              sum(CASE WHEN o.ordered_at >= p.s THEN o.amount ELSE 0 END) AS sp,"
    "              sum(CASE WHEN o.ordered_at >= p.s THEN 1 ELSE 0 END) AS np,"
    "              sum(CASE WHEN o.ordered_at < p.s THEN o.amount ELSE 0 END) AS sb,"
    "              sum(CASE WHEN o.ordered_at < p.s THEN 1 ELSE 0 END) AS nb"
    "       FROM m_acq_periods p JOIN {order} o ON o.ordered_at >= p.y AND o.ordered_at < p.e"
    "       GROUP BY p.i, o.customer_id) x"
    " WHERE np > 0 AND nb > 0 GROUP BY i", order=Order)
# Loyalty: customers active at E (calculators' CE condition) with enough orders in the 12 months before E.
LOYAL = render(
    "SELECT p.i, count(*) FROM m_acq_periods p"
    " JOIN m_changes c ON c.active_after = true AND c.t < p.e AND (c.next_t IS NULL OR c.next_t >= p.e)"
    " WHERE (SELECT count(*) FROM {order} o"
    "        WHERE o.customer_id = c.customer_id AND o.ordered_at >= p.ye AND o.ordered_at < p.e) >= %(min)s"
    " GROUP BY p.i", order=Order)
# Predicted CLV of the customers acquired in P (calculators' CN condition) that have one.
NEW_CUSTOMERS_PREDICTED_CLV = render(
    "SELECT p.i, count(*), sum(pr.predicted_clv_12m) FROM m_acq_periods p"
    " JOIN m_changes c ON c.kind = 'acquired' AND c.t >= p.s AND c.t < p.e"
    " JOIN {prediction} pr ON pr.customer_id = c.customer_id"
    " WHERE pr.predicted_clv_12m IS NOT NULL GROUP BY p.i", prediction=CustomerPrediction)


@dataclass(frozen=True)
class _Windows:
    start: dt.datetime
    end: dt.datetime
    year_before_start: dt.datetime
    year_before_end: dt.datetime


def _year_before(instant: dt.datetime) -> dt.datetime:
    """The same local day and time 12 calendar months earlier (29 February: the 28th)."""
    try:
        return instant.replace(year=instant.year - 1)
    except ValueError:
        return instant.replace(year=instant.year - 1, day=28)


def _build_periods(cur, periods: list[Period]) -> None:
    adapt = connection.ops.adapt_datetimefield_value
    kind = "timestamptz" if is_postgresql() else "datetime"
    cur.execute("DROP TABLE IF EXISTS m_acq_periods")
    cur.execute(render("CREATE TEMP TABLE m_acq_periods (i integer NOT NULL, s {kind} NOT NULL, e {kind} NOT NULL,"
                       " y {kind} NOT NULL, ye {kind} NOT NULL)", kind=kind))
    rows = []
    for i, period in enumerate(periods):
        S, E = period.bounds()
        rows.append((i, adapt(S), adapt(E), adapt(_year_before(S)), adapt(_year_before(E))))
    cur.executemany("INSERT INTO m_acq_periods (i, s, e, y, ye) VALUES (%s, %s, %s, %s, %s)", rows)


def _by_period(cur, statement: str, params: dict[str, Any] | None = None) -> dict[int, tuple]:
    cur.execute(statement, params or {})
    return {int(row[0]): row[1:] for row in cur.fetchall()}


def acquisition_spend(*, periods: list[Period]) -> dict[Period, float | None]:
    """Each period's acquisition spend (None: nothing entered for any month it touches), in one query."""
    first = min(p.start for p in periods).replace(day=1)
    last = max(p.end for p in periods)
    totals: dict[dt.date, Decimal] = {}
    channels: dict[dt.date, Decimal] = {}
    for month, channel, amount in AcquisitionSpend.objects.filter(month__gte=first, month__lt=last).values_list(
            "month", "channel", "amount"):
        target = channels if channel else totals
        target[month] = target.get(month, Decimal("0")) + amount
    by_month = {**channels, **totals}  # the all-channels row wins over the channels' sum
    out: dict[Period, float | None] = {}
    for period in periods:
        spend, entered = 0.0, False
        month = period.start.replace(day=1)
        while month < period.end:
            following = add_months(month, 1)
            if month in by_month:
                entered = True
                days = (min(following, period.end) - max(month, period.start)).days
                spend += float(by_month[month]) * days / (following - month).days
            month = following
        out[period] = spend if entered else None
    return out


@dataclass
class AcquisitionInputs:
    """A period's counts behind cross-sell, up-sell, loyalty and predicted CLV:CAC."""

    cross_base: int = 0
    cross_new: int = 0
    by_category: dict[str, int] = field(default_factory=dict)
    upsell_buyers: int = 0
    upsold: int = 0
    loyal: int = 0
    predicted_n: int = 0
    predicted_sum: Decimal | None = None


def acquisition_inputs(*, cur, periods: list[Period], upsell_threshold: Decimal) -> dict[Period, AcquisitionInputs]:
    """Each period's inputs, one grouped statement each for all the periods (m_changes must exist)."""
    _build_periods(cur, periods)
    cur.execute("DROP TABLE IF EXISTS m_first_cat")
    cur.execute(_FIRST_CATEGORY)
    cur.execute("CREATE INDEX m_first_cat_customer ON m_first_cat (customer_id, first_at)")
    if is_postgresql():
        cur.execute("ANALYZE m_first_cat; ANALYZE m_acq_periods")
    cross_base = _by_period(cur, _CROSS_SELL_BASE)
    cross_new = _by_period(cur, CROSS_SELL_CUSTOMERS)
    cur.execute(CROSS_SELL_BY_CATEGORY)
    by_category: dict[int, dict[str, int]] = {}
    for i, category, n in cur.fetchall():
        by_category.setdefault(int(i), {})[category] = int(n)
    upsell = _by_period(cur, UPSELL, {"bp": _BP, "threshold": int(upsell_threshold * _BP)})
    loyal = _by_period(cur, LOYAL, {"min": LOYAL_MIN_ORDERS})
    predicted = _by_period(cur, NEW_CUSTOMERS_PREDICTED_CLV)
    cur.execute("DROP TABLE m_first_cat")
    cur.execute("DROP TABLE m_acq_periods")
    out = {}
    for i, period in enumerate(periods):
        buyers, upsold = upsell.get(i, (0, 0))
        n_predicted, predicted_sum = predicted.get(i, (0, None))
        out[period] = AcquisitionInputs(
            cross_base=cross_base.get(i, (0,))[0], cross_new=cross_new.get(i, (0,))[0],
            by_category=by_category.get(i, {}), upsell_buyers=int(buyers or 0), upsold=int(upsold or 0),
            loyal=loyal.get(i, (0,))[0], predicted_n=int(n_predicted or 0), predicted_sum=predicted_sum)
    return out


def acquisition_figures_add(*, cur, periods: list[Period], out: dict[Period, dict[str, Figure]], margin: float,
                            upsell_threshold: Decimal) -> None:
    """Add section 6's CAC, CLV:CAC (historical and predicted), CAC payback, cross-sell, up-sell and loyalty
    figures to each period's figures in ``out`` (which already hold CN, CE, CS, revenue and historical CLV)."""
    if not periods:
        return
    inputs = acquisition_inputs(cur=cur, periods=periods, upsell_threshold=upsell_threshold)
    acquisition_figures_build(periods=periods, out=out, inputs=inputs, margin=margin, upsell_threshold=upsell_threshold)


def acquisition_figures_build(*, periods: list[Period], out: dict[Period, dict[str, Figure]],
                              inputs: dict[Period, AcquisitionInputs], margin: float, upsell_threshold: Decimal) -> None:
    """The figures of acquisition_figures_add from each period's inputs (however they were counted)."""
    if not periods:
        return
    spend = acquisition_spend(periods=periods)
    for period in periods:
        f, x = out[period], inputs[period]
        cn, cs, ce = f["CN"].value or 0, f["CS"].value or 0, f["CE"].value or 0
        cac = spend[period] / cn if spend[period] is not None and cn else None
        f["cac"] = Figure("cac", cac, spend[period], float(cn), {"spend": spend[period]})
        clv = f["historical_clv"].value
        f["clv_cac_ratio"] = Figure("clv_cac_ratio", clv / cac if clv is not None and cac else None, clv, cac)
        mean_predicted = float(x.predicted_sum) / x.predicted_n if x.predicted_n else None
        f["clv_cac_ratio_predicted"] = Figure(
            "clv_cac_ratio_predicted", mean_predicted / cac if mean_predicted is not None and cac else None,
            mean_predicted, cac, {"predicted_customers": x.predicted_n})
        # CAC / (ARPA x margin), ARPA = revenue in P / CS as in historical CLV: how many periods of P's length
        # a new customer's margin takes to repay what acquiring them cost.
        arpa = f["revenue"].value / cs if cs else None
        period_profit = arpa * margin if arpa is not None else None
        f["cac_payback"] = Figure("cac_payback", cac / period_profit if cac is not None and period_profit else None,
                                  cac, period_profit, {"arpa": arpa, "margin": margin})
        categories = sorted(({"category": c, "customers": n} for c, n in x.by_category.items()),
                            key=lambda row: (-row["customers"], row["category"]))
        f["cross_sell_rate"] = _ratio("cross_sell_rate", x.cross_new, x.cross_base, by_category=categories)
        f["upsell_rate"] = _ratio("upsell_rate", x.upsold, x.upsell_buyers, threshold=float(upsell_threshold))
        f["loyalty_share"] = _ratio("loyalty_share", x.loyal, ce)


def cross_sell_table(*, figure: Figure) -> dict[str, Any]:
    """The KPI page's cross-sell by category, from the figure's own ``by_category`` (a snapshot stores it in
    its extra): per category, the previous buyers who ordered it for the first time in P, and their share of
    the rate's denominator (a customer new to two categories counts in both rows)."""
    base = figure.denominator or 0
    return {"rows": [{"category": row["category"], "customers": row["customers"],
                      "customers_text": number_text(row["customers"]),
                      "share_html": format_value_html(row["customers"] / base if base else None, "rate")}
                     for row in figure.extra.get("by_category", [])]}
