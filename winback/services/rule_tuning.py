"""Choose the lapse rule on the business's own orders: the backtest of rule_evaluation.py, run on our history.

``lapse_rule_tune`` calibrates on the orders up to ``calibration_end`` = today - ``holdout_days`` and asks,
for every candidate rule the dormancy policy can express, whom it would have flagged then and whether those
customers really bought nothing in the days since ("no purchase in the holdout" is the positive class, as in
``evaluate_lapse_rules``). Candidates: the current policy; one window for everyone (30 .. 365 days); the
rhythm rule over k and its floor (min_days); the BG/NBD model rule over p_alive_min when a usable fit
exists (its parameters learnt at the calibration end, from the calibration part only). Each is scored at
its own flag, for all customers and for repeat buyers (3+ purchase days), and counted on today's history
("would flag today"). Ranked by F1 over all customers (the product runs one rule for everyone), fewer flags
first on a tie. ``better`` is set when the best beats the current rule by ``BETTER_MARGIN``: below that the
difference is a handful of customers, noise, and a policy change (a full lifecycle rebuild) is not worth it.

A manager adopts a candidate with one click (``lapse_rule_adopt``): a new policy version, recorded with who
and when, and the lifecycles are rebuilt (winback/services/policy.py).
"""

import datetime as dt
import io
import math
import zoneinfo
from dataclasses import replace
from decimal import Decimal
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext

from core.dialect import is_postgresql
from core.sql import render
from crm.models import Order
from predictions import btyd
from predictions.models import ModelFit
from predictions.selectors import fit_latest_usable
from winback.models import DormancyPolicy, RuleTuning
from winback.services import rule_evaluation as ev
from winback.services.policy import NEVER, policy_change, policy_current, policy_params

HOLDOUT_DAYS = (30, 730)  # bounds of the holdout a manager may ask for
DEFAULT_HOLDOUT_DAYS = 180
BETTER_MARGIN = 0.01
MIN_CUSTOMERS = 100
WINDOWS = (30, 45, 60, 90, 120, 180, 270, 365)
RHYTHM_K = (Decimal("1.5"), Decimal("2"), Decimal("3"), Decimal("4"))
RHYTHM_FLOORS = (14, 30, 60, 90)
P_ALIVE_MINS = (Decimal("0.1"), Decimal("0.2"), Decimal("0.3"), Decimal("0.5"), Decimal("0.7"))

_DAYS_PG = render(
    "COPY (SELECT customer_id, (ordered_at AT TIME ZONE %(tz)s)::date - DATE '0001-01-01' + 1, sum(amount)"
    " FROM {order} WHERE ordered_at < %(until)s GROUP BY 1, 2) TO STDOUT", order=Order)


def _history(*, until: dt.datetime) -> ev.Transactions:
    """The orders before ``until`` as purchase days (business time zone), ordinals like date.toordinal()."""
    if is_postgresql():
        buf = io.BytesIO()
        with connection.cursor() as cursor, cursor.cursor.copy(_DAYS_PG, {"tz": settings.TIME_ZONE, "until": until}) as copy:
            for block in copy:
                buf.write(block)
        if not buf.tell():
            return ev.Transactions(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0))
        buf.seek(0)
        table = np.loadtxt(buf, dtype=np.float64, delimiter="\t", ndmin=2)
        return ev.Transactions(table[:, 0].astype(np.int64), table[:, 1].astype(np.int64), table[:, 2])
    zone = zoneinfo.ZoneInfo(settings.TIME_ZONE)
    rows = list(Order.objects.filter(ordered_at__lt=until).values_list("customer_id", "ordered_at", "amount"))
    return ev.Transactions(np.array([r[0] for r in rows], dtype=np.int64),
                           np.array([r[1].astimezone(zone).date().toordinal() for r in rows], dtype=np.int64),
                           np.array([float(r[2]) for r in rows]))


def _policy_values(policy: DormancyPolicy) -> dict[str, Any]:
    return {"rule": policy.rule, "k": str(policy.k), "at_risk_k": str(policy.at_risk_k), "min_orders": policy.min_orders,
            "default_days": policy.default_days, "min_days": policy.min_days, "max_days": policy.max_days,
            "p_alive_min": str(policy.p_alive_min), "model_fit": policy.model_fit_id}


def _candidates(current: DormancyPolicy, fit: ModelFit | None) -> list[tuple[str, str, dict[str, Any]]]:
    base = _policy_values(current)
    out = [("current", f"Current: {current}", base)]
    for days in WINDOWS:
        out.append((f"window_{days}", f"Window: no order for {days} days", {**base, "rule": "window", "default_days": days}))
    for k in RHYTHM_K:
        for floor in RHYTHM_FLOORS:
            at_risk = min(Decimal(base["at_risk_k"]), k / 2)
            out.append((f"rhythm_{k}_{floor}", f"Rhythm: {k} missed cycles, at least {floor} days",
                        {**base, "rule": "rhythm", "k": str(k), "at_risk_k": str(at_risk), "min_days": floor,
                         "max_days": max(base["max_days"], floor)}))
    if fit is not None:
        for p in P_ALIVE_MINS:
            out.append((f"model_{p}", f"Model: P(alive) below {p:.0%} (BG/NBD fit {fit.pk})",
                        {**base, "rule": "model", "p_alive_min": str(p), "model_fit": fit.pk}))
    return out


def _flags(values: dict[str, Any], state: ev.CustomerState, model_params: dict[str, float] | None) -> np.ndarray:
    """Who the candidate calls lapsed at the state's cut (day precision)."""
    recency = state.recency.astype(float)
    min_days, max_days, default_days = values["min_days"], values["max_days"], values["default_days"]
    if values["rule"] == "model":
        if model_params is None:
            return np.zeros(state.size, dtype=bool)
        x = (state.n - 1).astype(float)
        t_x = (state.last - state.first) / 7.0
        crossing = btyd.bgnbd_crossing_age(params=model_params, x=np.maximum(x, 1), t_x=t_x,
                                           p_alive_min=float(values["p_alive_min"]))
        threshold = np.clip((crossing - t_x) * 7.0, min_days, max_days)
        return recency > np.where(x >= 1, threshold, default_days)
    policy = DormancyPolicy(**{**values, "model_fit": None, "k": Decimal(values["k"]),
                               "at_risk_k": Decimal(values["at_risk_k"]), "p_alive_min": Decimal(values["p_alive_min"])})
    params = policy_params(policy)
    if values["rule"] == "window":
        params = replace(params, min_orders=NEVER)
    _, flag, _ = ev.rhythm_scores(state, params)
    return flag


def _scores(flag: np.ndarray, state: ev.CustomerState) -> dict[str, dict[str, float | int | None]]:
    out = {}
    for name, mask in (("all", np.ones(state.size, dtype=bool)), ("repeat", state.n >= ev.REPEAT_MIN)):
        m = ev.classification_metrics(flag=flag[mask], label=state.gone[mask], score=flag[mask].astype(float))
        out[name] = {"customers": m.customers, "flagged": m.flagged, "precision": _num(m.precision),
                     "recall": _num(m.recall), "f1": _num(m.f1)}
    return out


def _num(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 4)


def lapse_rule_tune(*, holdout_days: int = DEFAULT_HOLDOUT_DAYS, now: dt.datetime | None = None) -> RuleTuning:
    """Backtest every candidate on the orders before ``now`` and keep the result (one RuleTuning row)."""
    low, high = HOLDOUT_DAYS
    if not low <= holdout_days <= high:
        raise ValidationError({"holdout_days": gettext("The holdout is %(low)s to %(high)s days; %(days)s is outside.")
                                              % {"low": low, "high": high, "days": holdout_days}})
    now = now or timezone.now()
    today = timezone.localtime(now).date()
    calibration_end = today - dt.timedelta(days=holdout_days)
    current = policy_current()
    tuning = RuleTuning(ran_at=now, calibration_end=calibration_end, holdout_days=holdout_days, policy=current)
    days = ev.purchase_days_merge(_history(until=now))
    cut, end = calibration_end.toordinal(), today.toordinal()
    state = ev.customer_state(days, cut=cut, end=end)
    tuning.customers = state.size
    if state.size < MIN_CUSTOMERS:
        tuning.reason = (f"Only {state.size} customers bought before {calibration_end}; at least {MIN_CUSTOMERS} are "
                         f"needed to compare rules (or ask for a longer holdout).")
        tuning.save()
        return tuning
    fit = fit_latest_usable(model=ModelFit.Model.BGNBD)
    calibration_params = None
    if fit is not None:
        inputs = ev.btyd_inputs(state)
        try:
            result = btyd.bgnbd_fit(**inputs)
            calibration_params = result.params if result.converged else None
        except btyd.FitError:
            calibration_params = None
    state_today = ev.customer_state(days, cut=end, end=end)
    rows = []
    for key, label, values in _candidates(current, fit):
        flag = _flags(values, state, calibration_params)
        today_flags = _flags(values, state_today, fit.params if fit is not None else None)
        rows.append({"key": key, "label": label, "values": values, **_scores(flag, state),
                     "flagged_today": int(today_flags.sum())})
    ranked = sorted(rows, key=lambda r: (-(r["all"]["f1"] or 0.0), r["all"]["flagged"]))
    current_row = next(r for r in rows if r["key"] == "current")
    best = ranked[0]
    tuning.candidates = [current_row] + [r for r in ranked if r["key"] != "current"]
    tuning.best_key = best["key"]
    tuning.better = best["key"] != "current" and (best["all"]["f1"] or 0) > (current_row["all"]["f1"] or 0) + BETTER_MARGIN
    tuning.save()
    return tuning


def lapse_rule_adopt(*, user: AbstractBaseUser, tuning: RuleTuning, key: str) -> DormancyPolicy:
    """The candidate ``key`` of ``tuning`` becomes the policy: a new version, by ``user``, noted with its source."""
    row = next((r for r in tuning.candidates if r["key"] == key), None)
    if row is None:
        raise ValidationError(gettext("Tuning %(id)s has no candidate “%(key)s”.") % {"id": tuning.pk, "key": key})
    values = dict(row["values"])
    values["model_fit"] = ModelFit.objects.filter(pk=values.get("model_fit")).first()
    for name in ("k", "at_risk_k", "p_alive_min"):
        values[name] = Decimal(values[name])
    return policy_change(user=user, values=values,
                         note=f"Adopted from lapse rule tuning #{tuning.pk}: {row['label']}"[:200])

