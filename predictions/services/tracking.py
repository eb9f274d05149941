"""Repeat purchases per week, actual and expected: how well a BG/NBD (or MBG/NBD) fit tracks the business,
as in Fader, Hardie & Lee (2005), "Counting your customers" the easy way, figures 1 and 2.

- Weeks start on Monday in the business time zone (``TIME_ZONE``), from the week of the first order to the
  week of ``until``, the most recent ``MAX_WEEKS`` at most. The last week ends with ``until``'s day.
- actual: repeat purchase days in the week: a customer's purchase days after their first one; a customer's
  orders on one day are one purchase (predictions/services/summary.py counts the same way).
- expected: the sum over customers of E[X(w_end - t0)] - E[X(w_start - t0)], t0 the customer's first
  purchase day and E[X(t)] the fit's expected repeat purchases of a new customer within t weeks
  (btyd.bgnbd_expected_cumulative / mbgnbd_expected_cumulative; 0 for t <= 0). Customers with the same
  first day share a term, and E[X] is evaluated once per whole number of days, so the cost is
  (distinct first days) x (weeks), cheap for any history.

One statement reads the whole history: the first purchases and the repeat purchase days of each day. On
PostgreSQL a window over the index order_customer_time (customer, ordered_at) tells which order starts a
new purchase day (lag: the customer's previous order is on an earlier day); on SQLite, the embedded default
for small data, Python does the same in one pass over the rows, as summary.py does. With 10 million orders
the statement is one serial pass (an index-only scan feeding the window), a few seconds. What keeps it there:
- the local day of an instant is the costly part of a row (AT TIME ZONE looks the zone up each time), so
  rows are counted per bucket of UTC time first and only the buckets (tens of thousands) become days: a
  bucket never straddles a local midnight, as its length divides every UTC offset the zone has used
  (zone_grain);
- whether an order starts a new day needs no conversion when the customer's previous order is longer ago
  than the zone's longest day (25 hours where the clocks go back one hour); only closer pairs are converted;
- JIT is off for the statement (compiling it costs more than it saves) and the buckets' hash gets the
  memory it needs; both settings are put back afterwards.
"""

import datetime as dt
import functools
import math
import zoneinfo

import numpy as np
from django.conf import settings
from django.db import connection, transaction

from core.dialect import is_postgresql
from core.sql import render
from crm.models import Order
from predictions import btyd
from predictions.models import ModelFit
from predictions.services.summary import DAYS_PER_WEEK

MAX_WEEKS = 520
_EPOCH = dt.date(1970, 1, 1)
# 1970-01-01 was a Thursday: epoch day d is in the week that starts on day d - (d + 3) % 7.
_MONDAY_OFFSET = 3

# Per day (days since 1970-01-01 in the business time zone): customers whose first purchase it is, and repeat
# purchase days (orders that start a purchase day of a customer who bought on an earlier day). An order
# starts a purchase day when the customer's previous order is on an earlier day; the first order of all has
# none. Ties (two orders at one instant) are on the same day, so their order does not matter.
# %(grain)s: seconds per bucket, %(longest)s: the zone's longest day (zone_grain). Index: order_customer_time.
_DAILY_PG = render(
    "SELECT (to_timestamp(bucket * %(grain)s) AT TIME ZONE %(tz)s)::date - DATE '1970-01-01' AS day,"
    "       sum(firsts)::bigint, sum(repeats)::bigint"
    " FROM (SELECT bucket, count(*) FILTER (WHERE previous IS NULL) AS firsts,"
    "              count(*) FILTER (WHERE ordered_at - previous >= %(longest)s"
    "                  OR (previous AT TIME ZONE %(tz)s)::date < (ordered_at AT TIME ZONE %(tz)s)::date) AS repeats"
    "       FROM (SELECT ordered_at, floor(date_part('epoch', ordered_at) / %(grain)s)::bigint AS bucket,"
    "                    lag(ordered_at) OVER (PARTITION BY customer_id ORDER BY ordered_at) AS previous"
    "             FROM {order} WHERE ordered_at < %(until)s) o"
    "       GROUP BY 1) b"
    " GROUP BY 1 ORDER BY 1",
    order=Order)
_SETTINGS = "SELECT current_setting('jit'), current_setting('work_mem')"
_SET = "SELECT set_config('jit', %(jit)s, true), set_config('work_mem', %(work_mem)s, true)"

_EXPECTED_CUMULATIVE = {
    ModelFit.Model.BGNBD: btyd.bgnbd_expected_cumulative,
    ModelFit.Model.MBGNBD: btyd.mbgnbd_expected_cumulative,
}

Daily = tuple[np.ndarray, np.ndarray, np.ndarray]  # days since 1970-01-01, first purchases, repeat purchase days


def purchase_days_daily(*, until: dt.datetime) -> Daily:
    """The days with an order before ``until``, ascending, with their first purchases and repeat purchase
    days: what purchases_tracking reads (one pass over the orders), to share between the fits of a run."""
    if is_postgresql():
        return _daily_postgresql(until=until)
    return _daily_python(until=until, zone=zoneinfo.ZoneInfo(settings.TIME_ZONE))


def purchases_tracking(*, fit: ModelFit, until: dt.datetime, daily: Daily | None = None) -> dict:
    """{"weeks": [ISO date of each Monday], "actual": [repeat purchase days], "expected": [expected repeat
    purchase days], "until": ISO instant} for the orders before ``until`` (see the module's docstring).
    ``daily``: purchase_days_daily(until=until), when the caller already has it."""
    cumulative = _EXPECTED_CUMULATIVE.get(fit.model)
    if cumulative is None:
        raise ValueError(f"tracking needs a BG/NBD or MBG/NBD fit, not {fit.model!r}")
    zone = zoneinfo.ZoneInfo(settings.TIME_ZONE)
    days, firsts, repeats = daily if daily is not None else purchase_days_daily(until=until)
    if days.size == 0:
        return {"weeks": [], "actual": [], "expected": [], "until": until.isoformat()}
    last_day = ((until - dt.timedelta(microseconds=1)).astimezone(zone).date() - _EPOCH).days
    last_week = last_day - (last_day + _MONDAY_OFFSET) % 7
    first_order_day = int(days[0])
    first_week = max(first_order_day - (first_order_day + _MONDAY_OFFSET) % 7, last_week - 7 * (MAX_WEEKS - 1))
    n_weeks = (last_week - first_week) // 7 + 1
    starts = first_week + 7 * np.arange(n_weeks, dtype=np.int64)
    ends = np.minimum(starts + 7, last_day + 1)

    # Actual: the days' repeat purchase days, summed per week (days before the first week drop out).
    shown = days >= first_week
    actual = np.bincount((days[shown] - first_week) // 7, weights=repeats[shown], minlength=n_weeks)[:n_weeks]

    # Expected: C(b) = sum over first days d < b of n_d E[X((b - d) / 7)], at each week's start and end;
    # E[X] once per whole number of days from the first first day to the last boundary.
    has_first = firsts > 0
    first_days, newcomers = days[has_first], firsts[has_first].astype(np.float64)
    lags = np.arange(int(ends[-1] - first_days[0]) + 1, dtype=np.float64)
    table = np.asarray(cumulative(params=fit.params, t=lags / DAYS_PER_WEEK), dtype=np.float64)

    def before(boundary: int) -> float:
        k = int(np.searchsorted(first_days, boundary))  # the first days strictly before the boundary
        return float(newcomers[:k] @ table[boundary - first_days[:k]])

    expected = [before(int(e)) - before(int(s)) for s, e in zip(starts, ends)]
    return {
        "weeks": [(_EPOCH + dt.timedelta(days=int(s))).isoformat() for s in starts],
        "actual": [int(v) for v in actual.round()],
        "expected": [round(v, 4) for v in expected],
        "until": until.isoformat(),
    }


@functools.lru_cache(maxsize=8)
def zone_grain(name: str, last_year: int) -> tuple[int, dt.timedelta]:
    """(bucket seconds, longest day) of the zone from 1970 to ``last_year``. The bucket is the largest
    divisor of an hour that divides every UTC offset the zone used (3600 for whole-hour zones, 1800 for
    India, 900 for Nepal), so local midnights fall on bucket boundaries; the longest day is 24 hours plus
    the largest step back of the clocks. Offsets read once a day, at noon UTC (about 20,000 reads)."""
    zone = zoneinfo.ZoneInfo(name)
    grain, step_back, previous = 3600, 0, None
    day = dt.datetime(1970, 1, 1, 12, tzinfo=dt.timezone.utc)
    end = dt.datetime(last_year + 1, 12, 31, 12, tzinfo=dt.timezone.utc)
    while day <= end:
        offset = int(day.astimezone(zone).utcoffset().total_seconds())
        grain = math.gcd(grain, offset)
        if previous is not None:
            step_back = max(step_back, previous - offset)
        previous = offset
        day += dt.timedelta(days=1)
    return max(grain, 1), dt.timedelta(days=1, seconds=step_back)


def _daily_postgresql(*, until: dt.datetime) -> Daily:
    grain, longest = zone_grain(settings.TIME_ZONE, until.year)
    # grain as a float: the division and to_timestamp take double precision (no cast per row).
    params = {"tz": settings.TIME_ZONE, "until": until, "grain": float(grain), "longest": longest}
    # set_config(..., true) lasts until the end of the transaction, which may be the caller's: put back after
    # the statement; if it fails, rolling back to atomic()'s savepoint (or the transaction) undoes them.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_SETTINGS)
        jit, work_mem = cursor.fetchone()
        cursor.execute(_SET, {"jit": "off", "work_mem": "64MB"})
        cursor.execute(_DAILY_PG, params)
        rows = cursor.fetchall()
        cursor.execute(_SET, {"jit": jit, "work_mem": work_mem})
    table = np.array(rows, dtype=np.int64).reshape(-1, 3)
    return table[:, 0], table[:, 1], table[:, 2]


def _daily_python(*, until: dt.datetime, zone: zoneinfo.ZoneInfo) -> Daily:
    rows = (Order.objects.filter(ordered_at__lt=until).order_by("customer_id", "ordered_at")
            .values_list("customer_id", "ordered_at"))
    firsts: dict[int, int] = {}
    repeats: dict[int, int] = {}
    customer, previous = None, None
    for customer_id, ordered_at in rows.iterator(chunk_size=5000):
        day = (ordered_at.astimezone(zone).date() - _EPOCH).days
        if customer_id != customer:
            customer, previous = customer_id, day
            firsts[day] = firsts.get(day, 0) + 1
            continue
        if day != previous:
            repeats[day] = repeats.get(day, 0) + 1
            previous = day
    days = np.array(sorted(firsts.keys() | repeats.keys()), dtype=np.int64)
    return (days, np.array([firsts.get(d, 0) for d in days.tolist()], dtype=np.int64),
            np.array([repeats.get(d, 0) for d in days.tolist()], dtype=np.int64))
