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
import io
from collections.abc import Collection

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
_COPY = render("COPY {table} ({columns}) FROM STDIN", table=CustomerPrediction,
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


def _money(values: np.ndarray) -> list[str]:
    return ["\\N" if np.isnan(v) else f"{max(v, 0.0):.2f}" for v in values.tolist()]


def _rows(*, summary: PurchaseSummary, scored: np.ndarray, fit_id: np.ndarray, p_alive: np.ndarray,
          source: np.ndarray, expected: np.ndarray, value: np.ndarray, clv: np.ndarray,
          now: dt.datetime) -> list[tuple]:
    idx = np.flatnonzero(scored)
    ids = summary.customer_id[idx].tolist()
    fits = fit_id[idx].tolist()
    alive = np.clip(p_alive[idx], 0.0, 1.0).tolist()
    models = source[idx].tolist()
    purchases = np.maximum(expected[idx], 0.0).tolist()
    values = _money(value[idx])
    clvs = _money(clv[idx])
    return list(zip(ids, fits, alive, models, purchases, values, clvs, [now] * len(ids), strict=True))


def _write(*, rows: list[tuple], customer_ids: list[int] | None) -> None:
    if is_postgresql():
        with connection.cursor() as cursor:
            if customer_ids is None:
                cursor.execute(_DELETE_ALL)
            else:
                cursor.execute(_DELETE_SOME, {"ids": customer_ids})
            buf = io.StringIO()
            stamp = rows[0][7].isoformat() if rows else ""
            for r in rows:
                buf.write(f"{r[0]}\t{r[1]}\t{r[2]!r}\t{r[3]}\t{r[4]!r}\t{r[5]}\t{r[6]}\t{stamp}\n")
            with connection.wrap_database_errors, cursor.cursor.copy(_COPY) as copy:
                copy.write(buf.getvalue())
        return
    stale = CustomerPrediction.objects.all()
    if customer_ids is not None:
        stale = stale.filter(customer_id__in=customer_ids)
    stale.delete()
    CustomerPrediction.objects.bulk_create([
        CustomerPrediction(customer_id=r[0], fit_id=r[1], p_alive=r[2], p_alive_model=r[3], expected_purchases_90d=r[4],
                           expected_order_value=None if r[5] == "\\N" else r[5],
                           predicted_clv_12m=None if r[6] == "\\N" else r[6], scored_at=r[7])
        for r in rows], batch_size=2000)


def predictions_refresh(*, customer_ids: Collection[int]) -> int:
    """Rescore customers whose history changed, as of now, with the latest usable fits (no refit)."""
    if not customer_ids:
        return 0
    summary = purchase_summary(as_of=timezone.now(), customer_ids=customer_ids)
    return predictions_score(summary=summary, customer_ids=customer_ids)
