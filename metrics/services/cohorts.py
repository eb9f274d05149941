"""Cohort retention: customers grouped by acquisition month; cell (cohort, k) is the share of the cohort
active at the start of the k-th month after their acquisition month (k = 1: active at the end of the
month they were acquired in). Same state rule as the calculators: events strictly before the instant."""

import datetime as dt
from collections import defaultdict

from django.conf import settings
from django.db import connection
from django.db.models import Count
from django.db.models.functions import TruncMonth
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _

from core.sql import render
from crm.models import Customer
from metrics.models import MetricSnapshot
from metrics.services.calculators import state_changes
from metrics.services.periods import Period, add_months

DEFAULT_COHORTS = 12
DEFINITION = _(
    "Customers grouped by the month they were acquired in; each cell is the share of the cohort active at the start "
    "of the k-th month after that month (k = 1: active at the end of the month they were acquired in). A "
    "customer's state at an instant comes from the events strictly before it.")


def _month(value) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = parse_datetime(value)
    return value.date().replace(day=1) if isinstance(value, dt.datetime) else value.replace(day=1)


def cohort_active_counts(cur, *, first: dt.date, last_boundary: dt.date,
                         customers: tuple[int | None, int | None] = (None, None)) -> dict[tuple[dt.date, dt.date], int]:
    """{(cohort month, boundary month): customers of the cohort active at the boundary's first instant}, for
    cohorts from ``first`` and boundaries up to ``last_boundary``. Needs the m_changes table (calculators).

    One grouped pass over the active spells: a spell [t, next_t) covers a boundary b when t is in a month
    before b's and next_t (if any) is in b's month or later; so per cohort, active at b = spells starting
    before b's month minus spells that also ended before it. ``customers``: the range (lo, hi) m_changes was
    built for (a refresh's part), so that the join reads only those customers' rows."""
    ops, tz = connection.ops, settings.TIME_ZONE
    trunc = {col: ops.datetime_trunc_sql("month", col, (), tz) for col in ("c.acquired_at", "s.t", "s.next_t")}
    S = Period(first, add_months(first, 1)).bounds()[0]
    E = Period(last_boundary, add_months(last_boundary, 1)).bounds()[0]
    # Index: the customers' primary key (m_changes has its own); a part's range of it, not the whole table.
    in_range = "" if customers == (None, None) else " AND c.id >= %s AND c.id < %s"
    statement = render(
        "SELECT {cohort}, {start}, {end}, count(*) FROM m_changes s JOIN {customer} c ON c.id = s.customer_id"
        " WHERE s.active_after = true AND c.acquired_at >= %s AND c.acquired_at < %s AND s.t < %s{in_range}"
        " GROUP BY 1, 2, 3",
        cohort=trunc["c.acquired_at"][0], start=trunc["s.t"][0], end=trunc["s.next_t"][0], customer=Customer,
        in_range=in_range)
    lo, hi = customers
    params = [*trunc["c.acquired_at"][1], *trunc["s.t"][1], *trunc["s.next_t"][1],
              *(ops.adapt_datetimefield_value(x) for x in (S, E, E)),
              *(() if customers == (None, None) else (0 if lo is None else lo, 2**63 - 1 if hi is None else hi))]
    cur.execute(statement, params)
    spells: dict[dt.date, list[tuple[dt.date, dt.date | None, int]]] = defaultdict(list)
    for cohort, start, end, n in cur.fetchall():
        spells[_month(cohort)].append((_month(start), _month(end), n))
    out: dict[tuple[dt.date, dt.date], int] = {}
    cohort = first
    while cohort < last_boundary:
        boundary = add_months(cohort, 1)
        while boundary <= last_boundary:
            out[(cohort, boundary)] = sum(n for start, end, n in spells.get(cohort, ()) if start < boundary and (end is None or end >= boundary))
            boundary = add_months(boundary, 1)
        cohort = add_months(cohort, 1)
    return out


def cohort_sizes(*, first: dt.date, end: dt.date) -> dict[dt.date, int]:
    S, E = Period(first, end).bounds()
    rows = (Customer.objects.filter(acquired_at__gte=S, acquired_at__lt=E).annotate(m=TruncMonth("acquired_at"))
            .values("m").annotate(n=Count("id")))
    return {_month(timezone.localtime(r["m"]) if isinstance(r["m"], dt.datetime) and timezone.is_aware(r["m"]) else r["m"]): r["n"]
            for r in rows}


def _range(period: Period | None) -> tuple[list[dt.date], dt.date]:
    this_month = timezone.localdate().replace(day=1)
    if period is None:
        period = Period(add_months(this_month, -(DEFAULT_COHORTS - 1)), add_months(this_month, 1))
    cohorts, month = [], period.start.replace(day=1)
    while month < period.end:
        cohorts.append(month)
        month = add_months(month, 1)
    last_boundary = min(add_months(cohorts[-1], 1), this_month)  # only boundaries that have passed
    return cohorts, last_boundary


def cohort_retention(*, period: Period | None = None, live: bool = False) -> dict:
    """The matrix for the cohorts of ``period`` (default: the last 12 months), from the snapshots when they
    hold every cell, else computed now."""
    cohorts, last_boundary = _range(period)
    needed = {(c, b) for c in cohorts for b in _boundaries(c, last_boundary)}
    active, sizes, source = None, None, "live"
    if not live:
        rows = MetricSnapshot.objects.filter(metric__in=["cohort_active", "cohort_size"], start__in=cohorts)
        stored = {(r.metric, r.start, r.end): int(r.value) for r in rows}
        found = {(c, b): stored[("cohort_active", c, b)] for c, b in needed if ("cohort_active", c, b) in stored}
        if len(found) == len(needed) and all(("cohort_size", c, add_months(c, 1)) in stored for c in cohorts):
            active, source = found, "snapshot"
            sizes = {c: stored[("cohort_size", c, add_months(c, 1))] for c in cohorts}
    if active is None:
        with state_changes() as cur:
            active = cohort_active_counts(cur, first=cohorts[0], last_boundary=max(last_boundary, cohorts[0]))
        sizes = cohort_sizes(first=cohorts[0], end=add_months(cohorts[-1], 1))
    out = []
    for c in cohorts:
        size = sizes.get(c, 0)
        cells = []
        for k, b in enumerate(_boundaries(c, last_boundary), start=1):
            n = active.get((c, b), 0)
            cells.append({"months_since": k, "active": n, "share": n / size if size else None})
        out.append({"cohort": f"{c:%Y-%m}", "customers": size, "cells": cells})
    return {"definition": DEFINITION, "cohorts": out, "source": source}


def _boundaries(cohort: dt.date, last_boundary: dt.date) -> list[dt.date]:
    out, b = [], add_months(cohort, 1)
    while b <= last_boundary:
        out.append(b)
        b = add_months(b, 1)
    return out
