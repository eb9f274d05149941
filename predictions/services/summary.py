"""The order history as the purchase models read it (docs/metrics.md section 7): per customer, in weeks.

- A customer's orders on one day (the business time zone's day) are one purchase, as Fader, Hardie & Lee
  count CDNOW's; the day's amounts are summed.
- x: repeat purchase days (purchase days after the first); t_x: weeks from the first purchase day to the
  last; T: weeks from the first purchase day to the last day the fit sees (the day of the instant just
  before ``as_of``), so an order at 10:00 on the as-of day counts for a fit as of 14:00 and its age is 0;
  m: mean amount per *repeat* purchase day (the first purchase is not in the Gamma-Gamma spend, as in the
  paper), 0 when x = 0.

On PostgreSQL one statement aggregates the orders to one row per customer (the index order_customer_time
serves the scan); on SQLite, the embedded default for small data, Python aggregates the rows in one pass.
"""

import datetime as dt
import io
import zoneinfo
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import connection

from core.dialect import is_postgresql
from core.sql import render
from crm.models import Order

DAYS_PER_WEEK = 7.0


@dataclass(frozen=True)
class PurchaseSummary:
    as_of: dt.datetime
    customer_id: np.ndarray  # int64
    x: np.ndarray  # float64, repeat purchase days
    t_x: np.ndarray  # weeks
    T: np.ndarray  # weeks
    m: np.ndarray  # mean amount per repeat purchase day (0 when x = 0)
    purchase_days: int

    @property
    def customers(self) -> int:
        return int(self.customer_id.size)

    @property
    def repeat_buyers(self) -> int:
        return int(np.count_nonzero(self.x > 0))


# The first day's amount rides in the minimum of day * 10^13 + cents, one aggregate instead of a sort per
# customer: an order's amount is below 10^10 (max_digits 12, 2 decimals), so a day's sum of up to 999
# such orders stays below 10^13 cents, and days since 1970 times 10^13 stay far inside a bigint.
_PACK = 10**13
_SUMMARY_PG_TEMPLATE = (
    "COPY (SELECT customer_id, count(*) - 1, max(day) - min(day), min(day) - DATE '1970-01-01',"
    " (sum(cents) - min((day - DATE '1970-01-01')::bigint * {pack} + cents) %% {pack})"
    " FROM (SELECT customer_id, (ordered_at AT TIME ZONE %(tz)s)::date AS day, (sum(amount) * 100)::bigint AS cents"
    "       FROM {order} WHERE ordered_at < %(as_of)s {scope} GROUP BY 1, 2) d"
    " GROUP BY customer_id ORDER BY customer_id) TO STDOUT")
_SUMMARY_PG = render(_SUMMARY_PG_TEMPLATE, order=Order, pack=str(_PACK), scope="")
# Some customers only (a rescore after their history changed). Index: order_customer_time.
_SUMMARY_PG_SOME = render(_SUMMARY_PG_TEMPLATE, order=Order, pack=str(_PACK), scope="AND customer_id = ANY(%(ids)s)")


def purchase_summary(*, as_of: dt.datetime, customer_ids: Collection[int] | None = None) -> PurchaseSummary:
    """Every customer with an order before ``as_of`` (or those of ``customer_ids``), as the models read them."""
    zone = zoneinfo.ZoneInfo(settings.TIME_ZONE)
    last_day = (as_of - dt.timedelta(microseconds=1)).astimezone(zone).date()
    if is_postgresql():
        ids, x, span_days, first_day, repeat_cents = _aggregate_postgresql(as_of=as_of, customer_ids=customer_ids)
    else:
        ids, x, span_days, first_day, repeat_cents = _aggregate_python(as_of=as_of, zone=zone, customer_ids=customer_ids)
    age_days = (last_day - dt.date(1970, 1, 1)).days - first_day
    with np.errstate(divide="ignore", invalid="ignore"):
        m = np.where(x > 0, repeat_cents / 100.0 / np.maximum(x, 1), 0.0)
    return PurchaseSummary(
        as_of=as_of, customer_id=ids, x=x.astype(np.float64), t_x=span_days / DAYS_PER_WEEK,
        T=age_days.astype(np.float64) / DAYS_PER_WEEK, m=m, purchase_days=int(x.sum() + ids.size),
    )


def _aggregate_postgresql(*, as_of: dt.datetime, customer_ids: Collection[int] | None) -> tuple[np.ndarray, ...]:
    buf = io.BytesIO()
    statement, params = _SUMMARY_PG, {"tz": settings.TIME_ZONE, "as_of": as_of}
    if customer_ids is not None:
        statement, params = _SUMMARY_PG_SOME, {**params, "ids": [int(i) for i in customer_ids]}
    with connection.cursor() as cursor:
        # COPY's text out parsed by numpy in one call: a million rows in about a second, where fetching
        # them as Python tuples takes several.
        with cursor.cursor.copy(statement, params) as copy:
            for block in copy:
                buf.write(block)
    if buf.tell() == 0:
        return tuple(np.zeros(0, dtype=np.int64) for _ in range(5))
    buf.seek(0)
    table = np.loadtxt(buf, dtype=np.int64, delimiter="\t", ndmin=2)
    return tuple(table[:, i] for i in range(5))


def _aggregate_python(*, as_of: dt.datetime, zone: zoneinfo.ZoneInfo,
                      customer_ids: Collection[int] | None) -> tuple[np.ndarray, ...]:
    epoch = dt.date(1970, 1, 1)
    orders = Order.objects.filter(ordered_at__lt=as_of)
    if customer_ids is not None:
        orders = orders.filter(customer_id__in=list(customer_ids))
    rows = orders.order_by("customer_id", "ordered_at").values_list(
        "customer_id", "ordered_at", "amount")
    out: dict[int, list[int]] = {}  # customer -> [x, span, first_day, first_day_cents, total_cents, last_day]
    for customer_id, ordered_at, amount in rows.iterator(chunk_size=5000):
        day = (ordered_at.astimezone(zone).date() - epoch).days
        cents = int(round(amount * 100))
        row = out.get(customer_id)
        if row is None:
            out[customer_id] = [0, 0, day, cents, cents, day]
            continue
        if day != row[5]:
            row[0] += 1
            row[5] = day
        elif row[0] == 0:
            row[3] += cents  # another order on the first day
        row[4] += cents
    ids = np.array(sorted(out), dtype=np.int64)
    vals = np.array([out[i] for i in ids.tolist()], dtype=np.int64).reshape(-1, 6)
    return ids, vals[:, 0], vals[:, 5] - vals[:, 2], vals[:, 2], vals[:, 4] - vals[:, 3]
