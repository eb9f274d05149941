"""Each customer's predictions from the latest usable fits (docs/metrics.md section 7).

- ``p_alive``: BG/NBD's P(alive) for a customer with a repeat purchase. BG/NBD says P(alive) = 1 for a
  customer who never bought again, however long ago (its dropout happens only after a purchase), which is
  not a fact worth showing: for them the MBG/NBD variant (Batislam et al. 2007, dropout possible at time 0)
  answers, and ``p_alive_model`` says which model did. Without a usable MBG/NBD fit a one-time buyer has no
  prediction: the rhythm rule's default window (``default_days``) alone speaks for them.
- ``expected_purchases_90d``: the same model's expected purchase days in the next 90 days.
- ``expected_order_value``: Gamma-Gamma's expected spend per purchase (the population mean for a customer
  with no repeat purchase); null without a usable Gamma-Gamma fit.
- ``predicted_clv_12m``: the discounted margin of the next 12 months' expected purchases:
  sum over months k = 1..12 of (E[purchases in months 1..k] - E[purchases in months 1..k-1])
  x expected order value x gross margin / (1 + monthly discount rate)^k (core.BusinessSettings).
  It is P(alive) times what the customer is worth if still buying, the "recoverable value" the queue
  ranks by (winback/services/cases.py).
"""

import datetime as dt
from collections.abc import Collection, Iterator
from dataclasses import dataclass

import numpy as np
from django.db import connection, transaction
from django.utils import timezone

from core.dialect import is_postgresql
from core.selectors import business_settings
from core.sql import render
from predictions import btyd
from predictions.models import CustomerPrediction, ModelFit
from predictions.selectors import fit_latest_usable
from predictions.services.summary import PurchaseSummary, purchase_summary
from predictions.signals import predictions_refreshed

Model = ModelFit.Model
HORIZON_WEEKS_90D = 90 / 7
CLV_MONTHS = 12
# Money columns hold at most 14 (order value) and 16 (CLV) digits: a degenerate fit must not overflow them.
MAX_ORDER_VALUE = 10**11
MAX_CLV = 10**13

_COLUMNS = ("customer_id", "fit_id", "p_alive", "p_alive_model", "expected_purchases_90d", "expected_order_value",
            "predicted_clv_12m", "scored_at")
_COPY = render("COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)", table=CustomerPrediction,
               columns=", ".join(f'"{c}"' for c in _COLUMNS))
_DELETE_ALL = render("DELETE FROM {table}", table=CustomerPrediction)
_DELETE_SOME = render("DELETE FROM {table} WHERE customer_id = ANY(%(ids)s)", table=CustomerPrediction)


def _model_arrays(*, summary: PurchaseSummary, fit: ModelFit, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    args = {"params": fit.params, "x": summary.x[keep], "t_x": summary.t_x[keep], "T": summary.T[keep]}
    if fit.model == Model.BGNBD:
        return btyd.bgnbd_p_alive(**args), btyd.bgnbd_expected_purchases(t=HORIZON_WEEKS_90D, **args)
    return btyd.mbgnbd_p_alive(**args), btyd.mbgnbd_expected_purchases(t=HORIZON_WEEKS_90D, **args)


def predictions_score(*, summary: PurchaseSummary, customer_ids: Collection[int] | None = None,
                      timings: dict[str, float] | None = None) -> int:
    """Rewrite the predictions of the summary's customers (everyone when ``customer_ids`` is None) with the
    latest usable fits; returns how many customers have one. Customers of the scope that the models cannot
    speak for lose their row."""
    bg, mbg, gg = (fit_latest_usable(model=m) for m in (Model.BGNBD, Model.MBGNBD, Model.GAMMA_GAMMA))
    n = summary.customers
    p_alive = np.full(n, np.nan)
    expected = np.full(n, np.nan)
    source = np.full(n, "", dtype=object)
    fit_id = np.zeros(n, dtype=np.int64)
    repeat = summary.x > 0
    for fit, keep in ((bg or mbg, repeat), (mbg, ~repeat)):
        if fit is None or not keep.any():
            continue
        p_alive[keep], expected[keep] = _model_arrays(summary=summary, fit=fit, keep=keep)
        source[keep] = fit.model
        fit_id[keep] = fit.pk
    scored = ~np.isnan(p_alive)
    value = np.full(n, np.nan)
    clv = np.full(n, np.nan)
    if gg is not None:
        value = np.minimum(btyd.gamma_gamma_expected_value(params=gg.params, x=summary.x, m=summary.m), MAX_ORDER_VALUE)
        settings_row = business_settings()
        for model in (Model.BGNBD, Model.MBGNBD):
            keep = scored & (source == model)
            if not keep.any():
                continue
            fit = bg if model == Model.BGNBD else mbg
            clv[keep] = np.minimum(btyd.clv(
                model=model, params=fit.params, gg_params=gg.params, x=summary.x[keep], t_x=summary.t_x[keep],
                T=summary.T[keep], m=summary.m[keep], months=CLV_MONTHS,
                monthly_discount_rate=float(settings_row.monthly_discount_rate), margin=float(settings_row.gross_margin),
            ), MAX_CLV)
    now = timezone.now()
    rows = _rows(summary=summary, scored=scored, fit_id=fit_id, p_alive=p_alive, source=source, expected=expected,
                 value=value, clv=clv, now=now)
    scope = None if customer_ids is None else summary_ids(summary, customer_ids)
    with transaction.atomic():
        _write(rows=rows, customer_ids=scope)
        transaction.on_commit(lambda: predictions_refreshed.send(sender=CustomerPrediction, customer_ids=scope))
    return int(scored.sum())


def summary_ids(summary: PurchaseSummary, customer_ids: Collection[int]) -> list[int]:
    # The scope is every customer asked for, including those with no order left (their row goes).
    return sorted({int(i) for i in customer_ids} | set(summary.customer_id.tolist()))


@dataclass(frozen=True)
class _Rows:
    """The rows to write: one element per scored customer, in ascending customer id."""

    customer_id: np.ndarray  # int64
    fit_id: np.ndarray  # int64
    p_alive: np.ndarray  # float64, in [0, 1]
    model: np.ndarray  # object: the p_alive_model
    expected: np.ndarray  # float64, >= 0
    value: np.ndarray  # float64, >= 0; NaN: none (NULL)
    clv: np.ndarray  # float64, >= 0; NaN: none (NULL)
    scored_at: dt.datetime

    def __len__(self) -> int:
        return int(self.customer_id.size)


def _money(values: np.ndarray) -> list[str]:
    return ["\\N" if np.isnan(v) else f"{max(v, 0.0):.2f}" for v in values.tolist()]


def _rows(*, summary: PurchaseSummary, scored: np.ndarray, fit_id: np.ndarray, p_alive: np.ndarray,
          source: np.ndarray, expected: np.ndarray, value: np.ndarray, clv: np.ndarray,
          now: dt.datetime) -> _Rows:
    idx = np.flatnonzero(scored)
    return _Rows(customer_id=summary.customer_id[idx], fit_id=fit_id[idx], p_alive=np.clip(p_alive[idx], 0.0, 1.0),
                 model=source[idx], expected=np.maximum(expected[idx], 0.0), value=np.maximum(value[idx], 0.0),
                 clv=np.maximum(clv[idx], 0.0), scored_at=now)


# The rows go to PostgreSQL as a binary COPY built by numpy, without a Python step per row: on
# bench/models.py a million rows take about 0.5 s to encode and 2 s to COPY into an empty table, where
# building them as Python tuples took 5 s and formatting and COPYing them as text 11 s. Each row is laid
# out at its widest in a record array (_layout) and the bytes a shorter row does not use (a shorter model
# name, a NULL amount) are masked out. The values are those the text COPY wrote: floats exactly, amounts
# rounded to the cent as f"{v:.2f}" rounds (exactly, ties to even), NULL for none; and in the same order.
_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, no header extension
_TRAILER = b"\xff\xff"
_BLOCK = 1 << 17  # rows encoded at a time
_PG_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
# numeric as base-10000 digits: 4 for the whole part (below 10^16: the money caps are 10^11 and 10^13) and
# 1 for the cents; PostgreSQL strips the leading zero digits.
_NUMERIC = np.dtype([("len", ">i4"), ("ndigits", ">i2"), ("weight", ">i2"), ("sign", ">i2"), ("dscale", ">i2"),
                     ("digits", ">i2", (5,))])
_NUMERIC_BYTES = _NUMERIC.itemsize - 4
_WHOLE_LIMIT = 10**16


def _layout(model_bytes: int) -> np.dtype:
    return np.dtype([
        ("fields", ">i2"), ("customer_len", ">i4"), ("customer", ">i8"), ("fit_len", ">i4"), ("fit", ">i8"),
        ("p_alive_len", ">i4"), ("p_alive", ">f8"), ("model_len", ">i4"), ("model", f"S{model_bytes}"),
        ("expected_len", ">i4"), ("expected", ">f8"), ("value", _NUMERIC), ("clv", _NUMERIC),
        ("scored_at_len", ">i4"), ("scored_at", ">i8"),
    ])


def _cents(values: np.ndarray) -> np.ndarray:
    """values (finite, >= 0) times 100 rounded to a whole number exactly as f"{v:.2f}" rounds v: the exact
    product is p + e (Dekker's two-product), and only an exact half in p can round otherwise than p does."""
    p = values * 100.0
    c = values * 134217729.0  # 2^27 + 1: hi keeps the high 26 bits of the value, lo the rest
    hi = c - (c - values)
    lo = values - hi
    e = (hi * 100.0 - p) + lo * 100.0
    n = np.rint(p)
    half = np.abs(p - n) == 0.5
    n = np.where(half & (e > 0), np.ceil(p), np.where(half & (e < 0), np.floor(p), n))
    return n.astype(np.int64)


def _put_numeric(record: np.ndarray, values: np.ndarray, keep: np.ndarray, offset: int) -> None:
    """numeric(…, 2) values into record (NULL where NaN); keep's bytes after the length are masked out for NULL."""
    null = np.isnan(values)
    cents = _cents(np.where(null, 0.0, values))
    whole, frac = np.divmod(cents, 100)
    if np.any(whole >= _WHOLE_LIMIT):
        raise ValueError("an amount is too large for the prediction's money columns")
    digits = np.stack([whole // 10**12 % 10**4, whole // 10**8 % 10**4, whole // 10**4 % 10**4, whole % 10**4,
                       frac * 100], axis=1)
    record["len"] = np.where(null, -1, _NUMERIC_BYTES)
    record["ndigits"], record["weight"], record["sign"], record["dscale"] = 5, 3, 0, 2
    record["digits"] = digits
    if null.any():
        keep[null, offset + 4:offset + _NUMERIC.itemsize] = False


def _encode(rows: _Rows, block: slice, stamp: int) -> bytes:
    models = rows.model[block]
    names = {name: name.encode() for name in set(models.tolist())}
    width = max((len(b) for b in names.values()), default=1)
    layout = _layout(width)
    record = np.zeros(models.size, dtype=layout)
    record["fields"] = len(_COLUMNS)
    for name in ("customer", "fit", "p_alive", "expected", "scored_at"):
        record[f"{name}_len"] = 8
    record["customer"], record["fit"] = rows.customer_id[block], rows.fit_id[block]
    record["p_alive"], record["expected"] = rows.p_alive[block], rows.expected[block]
    record["scored_at"] = stamp
    keep = np.ones((models.size, layout.itemsize), dtype=bool)
    model_at = layout.fields["model"][1]
    for name, encoded in names.items():
        mine = models == name
        record["model_len"][mine] = len(encoded)
        record["model"][mine] = encoded
        if len(encoded) < width:
            keep[np.ix_(np.flatnonzero(mine), np.arange(model_at + len(encoded), model_at + width))] = False
    _put_numeric(record["value"], rows.value[block], keep, layout.fields["value"][1])
    _put_numeric(record["clv"], rows.clv[block], keep, layout.fields["clv"][1])
    raw = record.view(np.uint8).reshape(models.size, layout.itemsize)
    return raw.tobytes() if keep.all() else raw[keep].tobytes()


def _binary(rows: _Rows) -> Iterator[bytes]:
    stamp = (rows.scored_at - _PG_EPOCH) // dt.timedelta(microseconds=1)
    yield _SIGNATURE
    for start in range(0, len(rows), _BLOCK):
        yield _encode(rows, slice(start, start + _BLOCK), stamp)
    yield _TRAILER


def _write(*, rows: _Rows, customer_ids: list[int] | None) -> None:
    if is_postgresql():
        with connection.cursor() as cursor:
            if customer_ids is None:
                cursor.execute(_DELETE_ALL)
            else:
                cursor.execute(_DELETE_SOME, {"ids": customer_ids})
            with connection.wrap_database_errors, cursor.cursor.copy(_COPY) as copy:
                for data in _binary(rows):
                    copy.write(data)
        return
    stale = CustomerPrediction.objects.all()
    if customer_ids is not None:
        stale = stale.filter(customer_id__in=customer_ids)
    stale.delete()
    columns = zip(rows.customer_id.tolist(), rows.fit_id.tolist(), rows.p_alive.tolist(), rows.model.tolist(),
                  rows.expected.tolist(), _money(rows.value), _money(rows.clv), strict=True)
    CustomerPrediction.objects.bulk_create([
        CustomerPrediction(customer_id=r[0], fit_id=r[1], p_alive=r[2], p_alive_model=r[3], expected_purchases_90d=r[4],
                           expected_order_value=None if r[5] == "\\N" else r[5],
                           predicted_clv_12m=None if r[6] == "\\N" else r[6], scored_at=rows.scored_at)
        for r in columns], batch_size=2000)


def predictions_refresh(*, customer_ids: Collection[int]) -> int:
    """Rescore customers whose history changed, as of now, with the latest usable fits (no refit)."""
    if not customer_ids:
        return 0
    summary = purchase_summary(as_of=timezone.now(), customer_ids=customer_ids)
    return predictions_score(summary=summary, customer_ids=customer_ids)
