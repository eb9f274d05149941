"""The order history as the purchase models read it (docs/metrics.md section 7): per customer, in weeks.

- A customer's orders on one day (the business time zone's day) are one purchase, as Fader, Hardie & Lee
  count CDNOW's; the day's amounts are summed.
- x: repeat purchase days (purchase days after the first); t_x: weeks from the first purchase day to the
  last; T: weeks from the first purchase day to the last day the fit sees (the day of the instant just
  before ``as_of``), so an order at 10:00 on the as-of day counts for a fit as of 14:00 and its age is 0;
  m: mean amount per *repeat* purchase day (the first purchase is not in the Gamma-Gamma spend, as in the
  paper), 0 when x = 0.

On PostgreSQL one statement reads the orders, one fixed-width row each (customer, day in the business time
zone, amount in cents), as a binary COPY, which numpy decodes without a per-row Python step and aggregates
per customer and day (one sort); on SQLite, the embedded default for small data, Python aggregates the rows
in one pass. Why not GROUP BY in PostgreSQL: the orders are stored in the order they arrived, so the index
order_customer_time, which gives them per customer, reads the table in random order (a heap page per
order), and hashing or sorting 10 million orders by customer and day spills to disk below a work_mem of a
gigabyte or so. On bench/models.py (1 million customers, 10 million orders, 2 cores) the GROUP BY took 50 to
95 s through the index and 30 to 55 s hashed or sorted (work_mem 512 MB); this takes about 13 s, 10 of them
streaming the rows. A rescore of some customers reads theirs through that index.
"""

import datetime as dt
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
    # PostgreSQL, whole history: per day with an order (days since 1970-01-01, ascending), the customers whose
    # first purchase it is and the repeat purchase days, what the weekly tracking counts
    # (predictions/services/tracking.py's Daily), from this same pass over the orders; None otherwise.
    daily: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    @property
    def customers(self) -> int:
        return int(self.customer_id.size)

    @property
    def repeat_buyers(self) -> int:
        return int(np.count_nonzero(self.x > 0))


# Per order before as_of: customer, day (days since 1970-01-01 in the business time zone), amount in cents.
# Binary COPY rows of NOT NULL bigint, integer, bigint have a fixed width (_ROW), so the stream is one numpy
# record array. (amount is numeric(12, 2): in cents it is a whole number below 10^12.)
_ORDERS_PG_TEMPLATE = (
    "COPY (SELECT customer_id, (ordered_at AT TIME ZONE %(tz)s)::date - DATE '1970-01-01', (amount * 100)::bigint"
    " FROM {order} WHERE ordered_at < %(as_of)s {scope}) TO STDOUT (FORMAT BINARY)")
_ORDERS_PG = render(_ORDERS_PG_TEMPLATE, order=Order, scope="")
# Some customers only (a rescore after their history changed). Index: order_customer_time.
_ORDERS_PG_SOME = render(_ORDERS_PG_TEMPLATE, order=Order, scope="AND customer_id = ANY(%(ids)s)")
# A binary COPY row: field count, then per field its byte length and its big-endian value.
_ROW = np.dtype([("fields", ">i2"), ("customer_len", ">i4"), ("customer", ">i8"), ("day_len", ">i4"), ("day", ">i4"),
                 ("cents_len", ">i4"), ("cents", ">i8")])
_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_TRAILER = b"\xff\xff"
_DECODE_BYTES = 1 << 25  # decode the stream every 32 MB, so that the raw bytes never pile up
# An order's (customer, day) in one int64, customer * 2^17 + day + 1: one key to sort, and less memory than
# the two. ordered_at lies in [1970, 2200) (its CHECK), so day + 1 is in [0, 2^17) in any time zone; ids
# below 2^45 fit. Anything else (not seen in practice) is sorted by the two columns (lexsort) instead.
_DAY_BITS = 17
_DAY_MASK = (1 << _DAY_BITS) - 1
_CUSTOMER_LIMIT = 1 << (62 - _DAY_BITS)


def purchase_summary(*, as_of: dt.datetime, customer_ids: Collection[int] | None = None) -> PurchaseSummary:
    """Every customer with an order before ``as_of`` (or those of ``customer_ids``), as the models read them."""
    zone = zoneinfo.ZoneInfo(settings.TIME_ZONE)
    last_day = (as_of - dt.timedelta(microseconds=1)).astimezone(zone).date()
    daily = None
    if is_postgresql():
        ids, x, span_days, first_day, repeat_cents, daily = _aggregate_postgresql(as_of=as_of, customer_ids=customer_ids)
    else:
        ids, x, span_days, first_day, repeat_cents = _aggregate_python(as_of=as_of, zone=zone, customer_ids=customer_ids)
    age_days = (last_day - dt.date(1970, 1, 1)).days - first_day
    with np.errstate(divide="ignore", invalid="ignore"):
        m = np.where(x > 0, repeat_cents / 100.0 / np.maximum(x, 1), 0.0)
    return PurchaseSummary(
        as_of=as_of, customer_id=ids, x=x.astype(np.float64), t_x=span_days / DAYS_PER_WEEK,
        T=age_days.astype(np.float64) / DAYS_PER_WEEK, m=m, purchase_days=int(x.sum() + ids.size),
        daily=daily if customer_ids is None else None,
    )


def _aggregate_postgresql(*, as_of: dt.datetime, customer_ids: Collection[int] | None) -> tuple[np.ndarray, ...]:
    statement, params = _ORDERS_PG, {"tz": settings.TIME_ZONE, "as_of": as_of}
    if customer_ids is not None:
        statement, params = _ORDERS_PG_SOME, {**params, "ids": [int(i) for i in customer_ids]}
    keys, cents = _orders_postgresql(statement, params)
    if isinstance(keys, tuple):
        return _aggregate_columns(*keys, cents)
    return _aggregate_keys(keys, cents)


def _orders_postgresql(statement: str, params: dict) -> tuple[np.ndarray | tuple[np.ndarray, np.ndarray], np.ndarray]:
    """Every order the statement selects: its key (customer, day) packed (see _DAY_BITS), or the two columns
    when some order does not pack, and its cents; int64 arrays."""
    keys: list[np.ndarray] = []  # packed, while every order packs
    columns: list[tuple[np.ndarray, np.ndarray]] = []  # (customer, day), once one does not
    cents: list[np.ndarray] = []
    buf = bytearray()
    start = -1  # where the rows begin, once the header is read

    def decode(final: bool) -> None:
        nonlocal start
        if start < 0:
            if len(buf) < len(_SIGNATURE) + 8:
                if final:
                    raise ValueError("the binary COPY ended before its header")
                return
            if bytes(buf[:len(_SIGNATURE)]) != _SIGNATURE:
                raise ValueError("the binary COPY does not start with its signature")
            start = len(_SIGNATURE) + 8 + int.from_bytes(buf[len(_SIGNATURE) + 4:len(_SIGNATURE) + 8], "big")
        body = len(buf) - start
        if final:
            if bytes(buf[-len(_TRAILER):]) != _TRAILER or (body - len(_TRAILER)) % _ROW.itemsize:
                raise ValueError("the binary COPY does not end with whole rows and its trailer")
            body -= len(_TRAILER)
        n = body // _ROW.itemsize
        if n > 0:
            rows = np.frombuffer(buf, dtype=_ROW, count=n, offset=start)
            if not (np.all(rows["fields"] == 3) and np.all(rows["customer_len"] == 8) and np.all(rows["day_len"] == 4)
                    and np.all(rows["cents_len"] == 8)):
                raise ValueError("unexpected row layout in the binary COPY")
            customer, day = rows["customer"].astype(np.int64), rows["day"].astype(np.int64) + 1
            cents.append(rows["cents"].astype(np.int64))
            del rows
            if not columns and customer.min() >= 0 and customer.max() < _CUSTOMER_LIMIT and day.min() >= 0 \
                    and day.max() <= _DAY_MASK:
                customer <<= _DAY_BITS
                customer |= day
                keys.append(customer)
            else:
                columns.extend((key >> _DAY_BITS, key & _DAY_MASK) for key in keys)
                keys.clear()
                columns.append((customer, day))
        del buf[:start + n * _ROW.itemsize]
        start = 0

    with connection.cursor() as cursor:
        # One CopyData message per order: appended to one buffer, decoded every _DECODE_BYTES.
        with cursor.cursor.copy(statement, params) as copy:
            for block in copy:
                buf += block
                if len(buf) >= _DECODE_BYTES:
                    decode(final=False)
    decode(final=True)
    all_cents = np.concatenate(cents) if cents else np.zeros(0, dtype=np.int64)
    cents.clear()
    if columns:
        customer = np.concatenate([c for c, _ in columns])
        day = np.concatenate([d for _, d in columns]) - 1
        columns.clear()
        return (customer, day), all_cents
    all_keys = np.concatenate(keys) if keys else np.zeros(0, dtype=np.int64)
    keys.clear()
    return all_keys, all_cents


def _aggregate_keys(keys: np.ndarray, cents: np.ndarray) -> tuple[np.ndarray, ...]:
    """_aggregate_days from the orders' packed keys and cents."""
    order = np.argsort(keys)
    keys, cents = keys[order], cents[order]
    del order
    starts = _run_starts(keys)
    day_cents = np.add.reduceat(cents, starts) if starts.size else cents[:0]
    day_keys = keys[starts]
    del keys, cents, starts
    return _aggregate_days(day_keys >> _DAY_BITS, (day_keys & _DAY_MASK) - 1, day_cents)


def _aggregate_columns(customer: np.ndarray, day: np.ndarray, cents: np.ndarray) -> tuple[np.ndarray, ...]:
    """_aggregate_days from the orders' customers, days and cents (when their keys do not pack)."""
    order = np.lexsort((day, customer))
    customer, day, cents = customer[order], day[order], cents[order]
    del order
    starts = _run_starts(customer, day)
    day_cents = np.add.reduceat(cents, starts) if starts.size else cents[:0]
    return _aggregate_days(customer[starts], day[starts], day_cents)


def _run_starts(*sorted_columns: np.ndarray) -> np.ndarray:
    """Where each run of equal rows begins in the sorted columns."""
    n = sorted_columns[0].size
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    new = np.zeros(n, dtype=bool)
    new[0] = True
    for column in sorted_columns:
        new[1:] |= column[1:] != column[:-1]
    return np.flatnonzero(new)


def _aggregate_days(customer: np.ndarray, day: np.ndarray, cents: np.ndarray) -> tuple:
    """From the purchase days (customer, day, cents), ascending by customer then day: per customer, ascending,
    its id, repeat purchase days, days from the first purchase day to the last, first purchase day (days
    since 1970-01-01) and the cents of its repeat purchase days; then the per-day counts (PurchaseSummary.daily)."""
    if customer.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return (*(empty for _ in range(5)), (empty, empty, empty))
    firsts = _run_starts(customer)
    ends = np.append(firsts[1:], customer.size)
    first_day = day[firsts]
    repeat_cents = np.add.reduceat(cents, firsts) - cents[firsts]
    lowest = int(day.min())  # days span at most the 230 years the orders' CHECK allows: a short bincount
    purchases = np.bincount(day - lowest)
    newcomers = np.bincount(first_day - lowest, minlength=purchases.size)
    present = np.flatnonzero(purchases)
    daily = (present + lowest, newcomers[present], purchases[present] - newcomers[present])
    return customer[firsts], ends - firsts - 1, day[ends - 1] - first_day, first_day, repeat_cents, daily


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
