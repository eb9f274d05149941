"""Cohort retention: customers grouped by acquisition month; cell (cohort, k) is the share of the cohort
active at the start of the k-th month after their acquisition month (k = 1: active at the end of the
month they were acquired in). Same state rule as the calculators: events strictly before the instant."""

import datetime as dt

from django.db import connection, transaction
from django.db.models import Count
from django.db.models.functions import TruncMonth
from django.utils import timezone

from crm.models import Customer
from metrics.services.calculators import _build_changes
from metrics.services.periods import Period, add_months, month_of

DEFAULT_COHORTS = 12


def cohort_retention(*, period: Period | None = None) -> dict:
    if period is None:
        this_month = timezone.localdate().replace(day=1)
        period = Period(add_months(this_month, -(DEFAULT_COHORTS - 1)), add_months(this_month, 1))
    first = month_of(period.start).start
    cohorts: list[dt.date] = []
    month = first
    while month < period.end:
        cohorts.append(month)
        month = add_months(month, 1)
    today = timezone.localdate()
    S, E = Period(cohorts[0], add_months(cohorts[-1], 1)).bounds()
    base = Customer.objects.filter(acquired_at__gte=S, acquired_at__lt=E)
    sizes = {timezone.localtime(r["m"]).date() if isinstance(r["m"], dt.datetime) else r["m"]: r["n"]
             for r in base.annotate(m=TruncMonth("acquired_at")).values("m").annotate(n=Count("id"))}
    true = "true" if connection.vendor == "postgresql" else "1"
    active: dict[tuple[dt.date, int], int] = {}
    with transaction.atomic(), connection.cursor() as cur:
        _build_changes(cur)
        adapt = connection.ops.adapt_datetimefield_value
        bounds = [Period(c, add_months(c, 1)).bounds() for c in cohorts]
        which = "CASE " + " ".join(f"WHEN c.acquired_at >= %s AND c.acquired_at < %s THEN {i}" for i in range(len(cohorts))) + " END"
        which_params = [adapt(v) for pair in bounds for v in pair]
        # One query per month boundary: every cohort acquired before it, grouped by cohort.
        for boundary in [add_months(cohorts[0], k) for k in range(1, len(cohorts) + 1)]:
            if boundary > today:
                break
            x = adapt(Period(boundary, add_months(boundary, 1)).bounds()[0])
            cur.execute(f"""
                SELECT {which} AS cohort, count(*) FROM m_changes s JOIN crm_customer c ON c.id = s.customer_id
                WHERE s.active_after = {true} AND s.t < %s AND (s.next_t IS NULL OR s.next_t >= %s)
                  AND c.acquired_at >= %s AND c.acquired_at < %s
                GROUP BY 1""", [*which_params, x, x, adapt(S), x])
            found = dict(cur.fetchall())
            for i, cohort in enumerate(cohorts):
                if cohort < boundary:
                    k = (boundary.year - cohort.year) * 12 + boundary.month - cohort.month
                    active[(cohort, k)] = found.get(i, 0)
        cur.execute("DROP TABLE m_changes")
    rows = []
    for cohort in cohorts:
        size = sizes.get(cohort, 0)
        cells = []
        for k in range(1, len(cohorts) + 1):
            if (cohort, k) not in active:
                break
            n = active[(cohort, k)]
            cells.append({"months_since": k, "active": n, "share": n / size if size else None})
        rows.append({"cohort": f"{cohort:%Y-%m}", "customers": size, "cells": cells})
    return {"definition": __doc__.strip().replace("\n", " "), "cohorts": rows}
