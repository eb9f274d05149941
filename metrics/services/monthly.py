"""Every figure of many months at once, the way the snapshots are refreshed: in parts by customer.

The costly inputs (the lifecycle counts, the order sums, cross-sell, up-sell, loyalty, the cohort cells) are
sums over customers, so a part computes them for a range of customers (lo <= id < hi) and the parts' counts
add up: each part reads only its customers' lifecycle events, orders and order lines, once, whatever the
number of months (the customers' orders per month, m_cm, carry everything the order figures need, by window
functions over a customer's months). A part writes nothing: its counts are its result (JSON), so it can run
twice, or beside the other parts on another worker. The rest (cases, coupons, feedback, the funnel, the
agents' tables: the program's tables, small, not by customer) is read once for all months (program_sums: a
refresh's part of its own); months_figures turns it all into the figures of calculators._figures and
acquisition.py.

The figures are those of the one-period statements (metrics.sql PERIOD_*, acquisition.py's), month by month:
for a month m, "before S" is "a month before m", so each condition on instants becomes one on month indices
(year * 12 + month in the business time zone, see metrics.sql).
"""

import datetime as dt
import zoneinfo
from collections import defaultdict
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from psycopg import sql

from core.dialect import is_postgresql
from core.selectors import business_settings
from core.sql import render
from crm.models import Feedback, Order, OrderLine
from metrics.services.acquisition import _BP, AcquisitionInputs, acquisition_figures_build
from metrics.services.calculators import (
    Figure, _figures, _lifecycle_counts, customer_range_params, state_changes, won_back_revenue,
)
from metrics.services.cohorts import cohort_active_counts
from metrics.services.funnel import agent_conversions_by_month, figures_add, funnel_counts_by_month
from metrics.services.periods import Period, month_of
from metrics.services.program import agent_table_compute, reason_counts
from metrics.sql import (
    CATEGORY_MONTHS, CUSTOMER_MONTHS, FIRST_CATEGORY_MONTHS, MONTH_CASES_CLOSED, MONTH_CASES_OPENED,
    MONTH_COUPONS, MONTH_CROSS_SELL_BASE, MONTH_CROSS_SELL_BY_CATEGORY, MONTH_CROSS_SELL_NEW, MONTH_FEEDBACK,
    MONTH_LOYAL, MONTH_MONEY, MONTH_PREDICTED_CLV, MONTH_REACTIVATED_FROM_POOL, SPELLS,
)
from predictions.models import CustomerPrediction
from winback.models import Coupon, WinbackCase

Customers = tuple[int | None, int | None]
ALL_CUSTOMERS: Customers = (None, None)
LIFECYCLE_KEYS = ("CS", "CE", "LP", "L0", "CN", "Ln", "R", "RP")
MONEY_KEYS = ("revenue", "rev_prev", "rev_lost", "rev_gained")  # summed in cents; exact text in a part's JSON
EXACT_KEYS = (*MONEY_KEYS, "tenure_sum_days", "predicted_sum")  # added up as decimals
PROGRAM_KEYS = ("cases_won", "cases_closed", "treated", "treated_back", "held", "held_back", "coupons", "redeemed",
                "feedback")


def month_index(day: dt.date) -> int:
    """The month index of metrics.sql: year * 12 + month."""
    return day.year * 12 + day.month


def _month_sql(column: str) -> sql.Composable:
    """The month index of a timestamp column in the business time zone. PostgreSQL: date_part (a float, far
    cheaper per row than EXTRACT's numeric); elsewhere Django's own extract, its parameters (the zone's name)
    inlined as literals so that the statement keeps named parameters."""
    if is_postgresql():
        # The zone as Django's own extract names it (its last parameter), so that the months are Django's.
        _, zone = connection.ops.datetime_extract_sql("year", column, (), settings.TIME_ZONE)
        local = sql.Identifier(*column.split("."))
        if zone:
            local = sql.SQL("{column} AT TIME ZONE {zone}").format(column=local, zone=sql.Literal(zone[-1]))
        return sql.SQL("CAST(date_part('year', {local}) * 12 + date_part('month', {local}) AS integer)").format(local=local)
    parts: list[sql.Composable] = []
    for unit in ("year", "month"):
        text, params = connection.ops.datetime_extract_sql(unit, column, (), settings.TIME_ZONE)
        pieces = text.split("%s")
        if len(pieces) != len(params) + 1:
            raise ValueError(f"unexpected extract SQL for {unit}: {text!r}")
        composed: list[sql.Composable] = [sql.SQL(pieces[0])]
        for param, piece in zip(params, pieces[1:], strict=True):
            composed += [sql.Literal(param), sql.SQL(piece)]
        parts.append(sql.Composed(composed))
    return sql.SQL("CAST(({year}) * 12 + ({month}) AS integer)").format(year=parts[0], month=parts[1])


# The orders' months on PostgreSQL: the number of month starts (business time zone) at or before the order,
# from January 1970 (orders are from 1970 on: crm's check), a binary search per row instead of two date_parts.
_EPOCH_YEAR = 1970


def _order_month_sql(column: str) -> sql.Composable:
    """The month index of an order's time before ``until`` (see _order_month_params); _month_sql elsewhere."""
    if not is_postgresql():
        return _month_sql(column)
    return sql.SQL("CAST(%(month_base)s + width_bucket({column}, CAST(%(month_starts)s AS timestamptz[])) AS integer)").format(
        column=sql.Identifier(*column.split(".")))


def _order_month_params(until: dt.date) -> dict[str, Any]:
    """_order_month_sql's parameters for orders before the month ``until`` (a month's first day)."""
    zone = zoneinfo.ZoneInfo(settings.TIME_ZONE)
    starts, day = [], dt.date(_EPOCH_YEAR, 1, 1)
    while day < until:
        starts.append(dt.datetime.combine(day, dt.time(), tzinfo=zone))
        day = dt.date(day.year + day.month // 12, day.month % 12 + 1, 1)
    # width_bucket counts the starts at or before the time: 1 for January 1970 (index 1970 * 12 + 1).
    return {"month_base": _EPOCH_YEAR * 12, "month_starts": starts}


def _customers_sql(column: str, customers: Customers) -> sql.Composable:
    """A part's condition on its customers (nothing for all of them)."""
    if customers == ALL_CUSTOMERS:
        return sql.SQL("")
    return sql.SQL(" AND {column} >= %(lo)s AND {column} < %(hi)s").format(column=sql.Identifier(*column.split(".")))


@contextmanager
def _planner(**values: str):
    """PostgreSQL's planner settings for one statement (inside the part's transaction), e.g. a plan type off."""
    if not is_postgresql():
        yield
        return
    with connection.cursor() as cur:
        for name, value in values.items():
            cur.execute(render("SET LOCAL {name} = {value}", name=sql.Identifier(name), value=sql.Literal(value)))
        yield  # an error rolls the transaction back, the settings with it
        for name in values:
            cur.execute(render("SET LOCAL {name} TO DEFAULT", name=sql.Identifier(name)))


def _exact(value: Any) -> str:
    """A sum as text that keeps it exact through JSON (numeric on PostgreSQL; SQLite sums in floats)."""
    return str(value if value is not None else 0)


def _money(cents: Any) -> str:
    """Whole cents as the amount's exact text."""
    return str(Decimal(int(cents or 0)) / 100)


# --- A part: the sums over a range of customers -----------------------------------------------------------

# What a part sums: its customers' events and orders; their order lines; the program's tables (not by customer).
CUSTOMER_SUMS, LINE_SUMS, PROGRAM_SUMS = "customers", "lines", "program"


def months_part_compute(*, months: list[Period], customers: Customers = ALL_CUSTOMERS,
                        cohorts: tuple[dt.date, dt.date] | None = None,
                        sums: tuple[str, ...] = (CUSTOMER_SUMS, LINE_SUMS)) -> dict[str, Any]:
    """The sums of every month in ``months`` over the customers lo <= id < hi, as JSON: with CUSTOMER_SUMS the
    lifecycle counts, the order sums and (given ``cohorts``: first cohort month, last boundary) the cohort
    matrix's cells; with LINE_SUMS cross-sell's (a refresh gives the order lines of every customer a part of
    their own, so that no part reads the orders for them again); with PROGRAM_SUMS the program's counts and
    the KPI page's agent and reasons tables of every month (a part of their own too, beside the others)."""
    months = sorted(set(months))
    m0, m1 = month_index(months[0].start), month_index(months[-1].start)
    until = connection.ops.adapt_datetimefield_value(months[-1].bounds()[1])
    q: dict[str, Any] = {"m0": m0, "m1": m1, "until": until, **customer_range_params(customers)}
    if is_postgresql():
        q.update(_order_month_params(months[-1].end))
    per: dict[int, dict[str, Any]] = {month_index(p.start): {} for p in months}
    cells: dict[tuple[dt.date, dt.date], int] = {}
    if CUSTOMER_SUMS in sums:
        with state_changes(customers=customers, indexed=False) as cur:
            cells = _customer_sums(cur, months=months, customers=customers, cohorts=cohorts, q=q, per=per)
    if LINE_SUMS in sums:
        with transaction.atomic(), connection.cursor() as cur:
            if is_postgresql():
                cur.execute("SET LOCAL work_mem = '256MB'")  # as state_changes: the groupings hash in memory
                cur.execute("SET LOCAL jit = off")
            _line_sums(cur, customers=customers, q=q, per=per)
    out: dict[str, Any] = {"months": {str(m): values for m, values in per.items()},
                           "cohort_cells": [[c.isoformat(), b.isoformat(), n] for (c, b), n in cells.items()]}
    if PROGRAM_SUMS in sums:
        out["program"] = program_sums(months=months, tables=True)
    return out


def _put(per: dict[int, dict[str, Any]], rows, *keys: str, exact: tuple[str, ...] = (),
         cents: tuple[str, ...] = ()) -> None:
    for month, *values in rows:
        if int(month) in per:
            for key, value in zip(keys, values, strict=True):
                per[int(month)][key] = (_money(value) if key in cents else _exact(value) if key in exact
                                        else int(value or 0))


def _customer_sums(cur, *, months: list[Period], customers: Customers, cohorts: tuple[dt.date, dt.date] | None,
                   q: dict[str, Any], per: dict[int, dict[str, Any]]) -> dict[tuple[dt.date, dt.date], int]:
    """The lifecycle counts and the order sums of the customers (m_changes holds theirs)."""
    threshold = business_settings().upsell_threshold
    cur.execute("DROP TABLE IF EXISTS m_spells")
    cur.execute(render(SPELLS, month_t=_month_sql("t"), month_next=_month_sql("next_t")))
    cur.execute(MONTH_REACTIVATED_FROM_POOL, q)
    pool = {int(m): n for m, n in cur.fetchall()}
    lifecycle = _lifecycle_counts(cur, months, customers=customers,
                                  reactivated_from_pool={p: pool.get(month_index(p.start), 0) for p in months})
    for p, counts in lifecycle.items():
        per[month_index(p.start)].update({k: counts[k] for k in LIFECYCLE_KEYS},
                                         tenure_sum_days=_exact(counts["tenure_sum_days"]))
    cells = cohort_active_counts(cur, first=cohorts[0], last_boundary=cohorts[1], customers=customers) if cohorts else {}

    cur.execute("DROP TABLE IF EXISTS m_cm")
    with _planner(max_parallel_workers_per_gather="0"):
        # An index-only scan of order_customer_time (it includes the amount) reads just the part's customers,
        # in customer order: a range of customers is most of the table's pages when orders lie in the order
        # they were placed. Serial: the parts are the parallelism (on the workers), and gathering partly
        # grouped rows cost more than it saved (measured on 1M customers / 10M orders).
        cur.execute(render(CUSTOMER_MONTHS, month=_order_month_sql("ordered_at"), order=Order,
                           customers=_customers_sql("customer_id", customers)), q)
    cur.execute(MONTH_MONEY, {**q, "bp": _BP, "threshold": int(threshold * _BP)})
    _put(per, cur.fetchall(), "revenue", "buyers", "repeat_buyers", "upsell_buyers", "upsold", "rev_prev", "rev_lost",
         "rev_gained", cents=MONEY_KEYS)
    cur.execute(MONTH_LOYAL, q)
    for lo, hi, n in cur.fetchall():
        for m in range(int(lo), int(hi)):
            if m in per:
                per[m]["loyal"] = per[m].get("loyal", 0) + n
    cur.execute(render(MONTH_PREDICTED_CLV, prediction=CustomerPrediction), q)
    _put(per, cur.fetchall(), "predicted_n", "predicted_sum", exact=("predicted_sum",))
    cur.execute("DROP TABLE m_spells")
    cur.execute("DROP TABLE m_cm")
    return cells


def _line_sums(cur, *, customers: Customers, q: dict[str, Any], per: dict[int, dict[str, Any]]) -> None:
    """Cross-sell's counts: one pass over the order lines (and their orders) of the customers."""
    cur.execute("DROP TABLE IF EXISTS m_catm")
    cur.execute("DROP TABLE IF EXISTS m_catf")
    with _planner(enable_hashjoin="off"):
        # Every order probing a hash of the lines costs twice a merge of the two along their ids (or a look-up
        # of each line's order): the lines are the few, the orders the many.
        cur.execute(render(CATEGORY_MONTHS, month=_order_month_sql("o.ordered_at"), line=OrderLine, order=Order,
                           customers=_customers_sql("o.customer_id", customers)), q)
    cur.execute(FIRST_CATEGORY_MONTHS)
    cur.execute(MONTH_CROSS_SELL_BASE, q)
    _put(per, cur.fetchall(), "cross_base")
    cur.execute(MONTH_CROSS_SELL_NEW, q)
    _put(per, cur.fetchall(), "cross_new")
    cur.execute(MONTH_CROSS_SELL_BY_CATEGORY, q)
    for month, category, n in cur.fetchall():
        if int(month) in per:
            per[int(month)].setdefault("by_category", {})[category] = int(n)
    cur.execute("DROP TABLE m_catm")
    cur.execute("DROP TABLE m_catf")


def months_parts_combine(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The parts' sums added up (counts as ints, money and days as exact decimals)."""
    months: dict[int, dict[str, Any]] = {}
    cells: dict[tuple[dt.date, dt.date], int] = defaultdict(int)
    for result in results:
        for key, values in result["months"].items():
            total = months.setdefault(int(key), {"by_category": defaultdict(int)})
            for name, value in values.items():
                if name == "by_category":
                    for category, n in value.items():
                        total["by_category"][category] += n
                elif name in EXACT_KEYS:
                    total[name] = total.get(name, Decimal("0")) + Decimal(value)
                else:
                    total[name] = total.get(name, 0) + value
        for c, b, n in result.get("cohort_cells", []):
            cells[(dt.date.fromisoformat(c), dt.date.fromisoformat(b))] += n
    programs = [result["program"] for result in results if "program" in result]
    return {"months": months, "cohort_cells": dict(cells), "program": programs[0] if programs else None}


# --- The whole shop's program tables, and the figures ------------------------------------------------------

def _program_by_month(cur, months: list[Period]) -> dict[int, dict[str, Any]]:
    """metrics.sql PROGRAM_* of every month: one grouped statement each for all months."""
    S, E = (connection.ops.adapt_datetimefield_value(x) for x in (months[0].bounds()[0], months[-1].bounds()[1]))
    q = {"s": S, "e": E}
    out: dict[int, dict[str, Any]] = {month_index(p.start): {**dict.fromkeys(PROGRAM_KEYS, 0), "feedback": {}}
                                      for p in months}
    statements = [
        (MONTH_CASES_CLOSED, {"month_closed": _month_sql("closed_at"), "case": WinbackCase}, ("cases_won", "cases_closed")),
        (MONTH_CASES_OPENED, {"month_opened": _month_sql("opened_at"), "case": WinbackCase},
         ("treated", "treated_back", "held", "held_back")),
        (MONTH_COUPONS, {"month_issued": _month_sql("issued_at"), "coupon": Coupon}, ("coupons", "redeemed")),
    ]
    for template, parts, keys in statements:
        cur.execute(render(template, **parts), q)
        for month, *values in cur.fetchall():
            if int(month) in out:
                out[int(month)].update({k: int(v or 0) for k, v in zip(keys, values, strict=True)})
    cur.execute(render(MONTH_FEEDBACK, month_responded=_month_sql("responded_at"), feedback=Feedback), q)
    for month, kind, n, total, promoters, detractors, satisfied in cur.fetchall():
        if int(month) in out:
            out[int(month)]["feedback"][kind] = [n, total, promoters, detractors, satisfied]
    return out


def program_sums(*, months: list[Period], tables: bool = False) -> dict[str, dict[str, Any]]:
    """Per month (its index, as text): the program's counts (metrics.sql PROGRAM_*), the revenue won back,
    the funnel's counts and, with ``tables``, the KPI page's agent and reasons tables; as JSON."""
    with connection.cursor() as cur:
        program = _program_by_month(cur, months)
    funnel = funnel_counts_by_month(months=months)
    conversions = agent_conversions_by_month(months=months) if tables else {}
    out = {}
    for p in months:
        m = month_index(p.start)
        S, E = p.bounds()
        row = {**program[m], "won_back": list(won_back_revenue(start=S, end=E)), "funnel": funnel[p]}
        if tables:
            row.update(agent_table=agent_table_compute(period=p, conversions=conversions[p]),
                       reason_counts=reason_counts(period=p))
        out[str(m)] = row
    return out


def months_figures(*, months: list[Period], combined: dict[str, Any]) -> dict[Period, dict[str, Figure]]:
    """Every figure of every month, from the parts' combined sums and the program's (a part's, or read now)."""
    months = sorted(set(months))
    settings_row = business_settings()
    margin = float(settings_row.gross_margin)
    program = combined.get("program") or program_sums(months=months)
    out: dict[Period, dict[str, Figure]] = {}
    inputs: dict[Period, AcquisitionInputs] = {}
    for p in months:
        m = month_index(p.start)
        sums = combined["months"].get(m, {})
        counts = {k: sums.get(k, 0) for k in LIFECYCLE_KEYS}
        counts["tenure_sum_days"] = sums.get("tenure_sum_days", Decimal("0"))
        money = {k: sums.get(k, Decimal("0")) for k in MONEY_KEYS}
        month_program = program[str(m)]
        money.update({k: month_program[k] for k in PROGRAM_KEYS}, buyers=sums.get("buyers", 0),
                     repeat_buyers=sums.get("repeat_buyers", 0))
        money["won_back_revenue"], money["won_back_cases"] = month_program["won_back"]
        out[p] = _figures(counts, money, margin)
        inputs[p] = AcquisitionInputs(
            cross_base=sums.get("cross_base", 0), cross_new=sums.get("cross_new", 0),
            by_category=dict(sums.get("by_category", {})), upsell_buyers=sums.get("upsell_buyers", 0),
            upsold=sums.get("upsold", 0), loyal=sums.get("loyal", 0), predicted_n=sums.get("predicted_n", 0),
            predicted_sum=sums.get("predicted_sum"))
    acquisition_figures_build(periods=months, out=out, inputs=inputs, margin=margin,
                              upsell_threshold=settings_row.upsell_threshold)
    figures_add(out=out, periods=months, by_period={p: program[str(month_index(p.start))]["funnel"] for p in months})
    return out


def months_compute(*, months: list[Period]) -> dict[Period, dict[str, Figure]]:
    """Every figure of every month in one part (what a refresh does in several)."""
    months = sorted(set(months))
    return months_figures(months=months, combined=months_parts_combine([months_part_compute(months=months)]))


def months_from_json(values: list[str]) -> list[Period]:
    return [month_of(dt.date.fromisoformat(v)) for v in values]
