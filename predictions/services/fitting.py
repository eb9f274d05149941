"""Fit the purchase models on the business's own history and keep every attempt (docs/metrics.md s.7).

``models_fit`` fits BG/NBD, MBG/NBD and Gamma-Gamma on the orders before ``as_of`` and records one
``ModelFit`` row per model, usable or not, with the reason. It never raises for bad data or a fit that
does not converge: such a fit is recorded as not usable, the last usable fit of that model stays in use,
and where no model is usable the product keeps to the rhythm rule alone (docs/metrics.md s.1). Then the
customers are scored with the latest usable fits (predictions/services/scoring.py).

What "enough data" means here (the thresholds are settings, bounded in config/settings/base.py):
- the BG/NBD family needs ``PREDICTIONS_MIN_REPEAT_BUYERS`` customers with a repeat purchase (the
  dropout parameters a, b are learnt from them alone; with a few dozen they are noise) and some history
  (customers whose whole history is one day, T = 0, tell the model nothing);
- Gamma-Gamma needs as many repeat buyers with a positive spend, and spends that vary.
"""

import datetime as dt
import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from django.utils import timezone

from predictions import btyd
from predictions.models import ModelFit
from predictions.services.scoring import predictions_score
from predictions.services.summary import PurchaseSummary, purchase_summary
from predictions.services.tracking import purchase_days_daily, purchases_tracking

log = logging.getLogger(__name__)

Model = ModelFit.Model
# A parameter outside this range means the optimiser ran off to a boundary: the likelihood is flat in
# that direction and the "fit" describes nothing.
PARAM_RANGE = (1e-6, 1e6)


@dataclass
class FitReport:
    as_of: dt.datetime
    fits: list[ModelFit] = field(default_factory=list)
    scored: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        parts = [f"{f.model}: {'usable' if f.usable else 'not usable (' + f.reason + ')'}" for f in self.fits]
        return f"as of {self.as_of:%Y-%m-%d %H:%M}: " + "; ".join(parts) + f"; {self.scored} customers scored"


def _refusal(*, model: str, summary: PurchaseSummary) -> str:
    """Why the data cannot support ``model``, or ''."""
    minimum = settings.PREDICTIONS_MIN_REPEAT_BUYERS
    if summary.customers == 0:
        return "No order history yet."
    if model != Model.GAMMA_GAMMA and not np.any(summary.T > 0):
        return "Every customer's history is a single day: there is no time to learn from."
    if summary.repeat_buyers == 0:
        return f"All {summary.customers} customers bought once: nothing to learn repeat purchases from."
    if model == Model.GAMMA_GAMMA:
        spenders = int(np.count_nonzero((summary.x > 0) & (summary.m > 0)))
        if spenders == 0:
            return "No repeat buyer has a positive spend."
        if spenders < minimum:
            return f"Only {spenders} repeat buyers with a positive spend; at least {minimum} are needed."
        if np.ptp(summary.m[(summary.x > 0) & (summary.m > 0)]) == 0:
            return "Every repeat buyer spends the same amount: there is no spread to fit."
        return ""
    if summary.repeat_buyers < minimum:
        return f"Only {summary.repeat_buyers} repeat buyers; at least {minimum} are needed."
    return ""


def _fit_one(*, model: str, summary: PurchaseSummary) -> tuple[btyd.FitResult | None, str]:
    max_iterations = settings.PREDICTIONS_MAX_ITERATIONS
    try:
        if model == Model.GAMMA_GAMMA:
            keep = (summary.x > 0) & (summary.m > 0)
            return btyd.gamma_gamma_fit(x=summary.x[keep], m=summary.m[keep], max_iterations=max_iterations), ""
        fit = btyd.bgnbd_fit if model == Model.BGNBD else btyd.mbgnbd_fit
        return fit(x=summary.x, t_x=summary.t_x, T=summary.T, max_iterations=max_iterations), ""
    except btyd.FitError as exc:
        return None, str(exc)
    except (ArithmeticError, ValueError, np.linalg.LinAlgError) as exc:  # a numeric failure is a failed fit, not a crash
        log.warning("fit of %s failed: %s", model, exc)
        return None, f"The fit failed: {type(exc).__name__}: {exc}"


def _unusable_because(result: btyd.FitResult) -> str:
    if not result.converged:
        return f"Did not converge: {result.message}"[:300]
    if not math.isfinite(result.log_likelihood):
        return "The log-likelihood is not finite."
    low, high = PARAM_RANGE
    for name, value in result.params.items():
        if not (math.isfinite(value) and low <= value <= high):
            return f"Parameter {name} = {value:g} ran off to a boundary: the data does not identify it."
    return ""


def _tracking_store(fit: ModelFit, shared: dict) -> None:
    """The fit's weekly repeat purchases, actual and expected, up to now (so beyond as_of for a past fit).
    ``shared`` keeps the instant and the daily purchase days for the run's other fit (one pass over the orders)."""
    try:
        until = shared.setdefault("until", timezone.now())
        if "daily" not in shared:
            shared["daily"] = purchase_days_daily(until=until)
        fit.tracking = purchases_tracking(fit=fit, until=until, daily=shared["daily"])
    except (ArithmeticError, ValueError, np.linalg.LinAlgError) as exc:  # the fit stays usable without it
        log.warning("tracking of fit %s failed: %s", fit.pk, exc)
        return
    fit.save(update_fields=["tracking"])


def models_fit(*, as_of: dt.datetime | None = None, trigger: str = "command") -> FitReport:
    """Fit every model as of ``as_of`` (default now), record each attempt, then score the customers."""
    as_of_now = as_of is None
    as_of = as_of or timezone.now()
    report = FitReport(as_of=as_of)
    started = time.monotonic()
    summary = purchase_summary(as_of=as_of)
    report.seconds["summary"] = time.monotonic() - started
    tracking_shared: dict = {}
    if as_of_now and summary.daily is not None:
        # A fit as of now is tracked up to its own instant: the summary's pass over the orders already holds
        # the per-day counts the tracking needs, which would otherwise read every order again.
        tracking_shared.update(until=as_of, daily=summary.daily)
    for model in (Model.BGNBD, Model.MBGNBD, Model.GAMMA_GAMMA):
        began = time.monotonic()
        reason = _refusal(model=model, summary=summary)
        result = None
        if not reason:
            result, reason = _fit_one(model=model, summary=summary)
        if result is not None:
            reason = _unusable_because(result)
        elapsed = time.monotonic() - began
        report.seconds[f"fit {model}"] = elapsed
        fit = ModelFit.objects.create(
            model=model, fitted_at=timezone.now(), as_of=as_of, trigger=trigger[:20],
            customers=summary.customers, repeat_buyers=summary.repeat_buyers, purchase_days=summary.purchase_days,
            params={k: float(v) for k, v in result.params.items()} if result is not None else {},
            log_likelihood=result.log_likelihood if result is not None and math.isfinite(result.log_likelihood) else None,
            converged=bool(result is not None and result.converged), usable=result is not None and not reason,
            reason=reason[:300], duration_ms=min(int(elapsed * 1000), 2**31 - 1),
        )
        report.fits.append(fit)
        if fit.usable and model in (Model.BGNBD, Model.MBGNBD):
            began = time.monotonic()
            _tracking_store(fit, tracking_shared)
            report.seconds["tracking"] = report.seconds.get("tracking", 0.0) + time.monotonic() - began
    began = time.monotonic()
    report.scored = predictions_score(summary=summary, timings=report.seconds)
    report.seconds["score"] = time.monotonic() - began
    return report

