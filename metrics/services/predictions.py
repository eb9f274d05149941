"""Predicted customer value on the KPI page and in the API (docs/metrics.md section 7): the predicted 12-month
CLV of the lapsed pool, of the customers won back in the period and of the whole base, and how the purchase
model tracks the weekly repeat purchases. Reads stored rows only (the predictions, the fits and the fit's
tracking, computed by the nightly fit): nothing is fitted or scored here.

The win-back side lives here, not in predictions (crm <- predictions <- winback <- metrics): this module
names the won cases and hands the customers to predictions.selectors.predicted_clv_pools as a subquery.
"""

import datetime as dt
import math
import zoneinfo
from decimal import Decimal

from django.conf import settings
from django.db.models import QuerySet
from django.utils.translation import gettext as _

from core.locale_format import date_local
from crm.models import Customer
from metrics.services.periods import Period
from predictions.models import ModelFit
from predictions.selectors import clv_pool_predictions, predicted_clv_pools
from winback.models import WinbackCase

POOLS = ("lapsed", "won_back", "base")


def pool_labels() -> dict[str, str]:
    return {"lapsed": _("Lapsed pool"), "won_back": _("Won back in the period"), "base": _("Whole base")}


def won_back_customers(*, start: dt.datetime, end: dt.datetime):
    """The customers with a win-back case (not a care call) closed as won in [start, end), as a subquery.
    Index: case_status_closed."""
    return (WinbackCase.objects.filter(kind=WinbackCase.Kind.WINBACK, status=WinbackCase.Status.WON,
                                       closed_at__gte=start, closed_at__lt=end)
            .values("customer_id"))


def predicted_value(*, period: Period) -> dict:
    """The three pools (each: sum, count, mean, definition), the fit in use and the weekly tracking."""
    start, end = period.bounds()
    pools = predicted_clv_pools(period_start=start, period_end=end,
                                won_back_customers=won_back_customers(start=start, end=end))
    return {"pools": pools, "tracking": tracking(pools["fit"])}  # the fit in use is the one tracked


def predicted_pool_customers(*, pool: str, period: Period | None) -> QuerySet[Customer]:
    """The customers a pool's count counts (predicted_value's), the won back ones those of ``period``."""
    won_back = won_back_customers(start=period.bounds()[0], end=period.bounds()[1]) if pool == "won_back" else []
    predictions = clv_pool_predictions(pool=pool, won_back_customers=won_back)
    return Customer.objects.filter(pk__in=predictions.values("customer_id"))


def fit_info(fit: ModelFit | None) -> dict | None:
    if fit is None:
        return None
    return {
        "id": fit.pk, "model": fit.model, "label": fit.get_model_display(), "as_of": fit.as_of, "fitted_at": fit.fitted_at,
        "params": fit.params, "log_likelihood": fit.log_likelihood, "customers": fit.customers,
        "repeat_buyers": fit.repeat_buyers, "purchase_days": fit.purchase_days,
    }


def tracking(fit: ModelFit | None) -> dict:
    """The fit's stored weekly series, with the week of its as-of (where it is inside the series) and the
    note that says what the expected line is."""
    series = (fit.tracking if fit is not None else None) or {}
    weeks = list(series.get("weeks", []))
    out = {
        "fit": fit_info(fit), "weeks": weeks, "actual": list(series.get("actual", [])),
        "expected": list(series.get("expected", [])), "until": series.get("until"), "as_of_week": None,
        "definition": _(
            "Actual: repeat purchase days per week (a customer's purchase days after the first; same-day orders"
            " are one purchase). Expected: the sum over customers of E[X(end of week - first purchase)] -"
            " E[X(start of week - first purchase)], E[X(t)] the model's expected repeat purchases of a new"
            " customer within t (Fader, Hardie & Lee 2005, figure 1). Weeks start on Monday."),
        "note": "", "empty_reason": "",
    }
    if fit is None:
        out["empty_reason"] = _("No usable BG/NBD or MBG/NBD fit yet: run `manage.py fit_models` (it also runs"
                                " nightly).")
        return out
    # The fit saw the orders before as_of: its last day is the day of the instant just before (summary.py).
    zone = zoneinfo.ZoneInfo(settings.TIME_ZONE)
    as_of_day = (fit.as_of - dt.timedelta(microseconds=1)).astimezone(zone).date()
    monday = (as_of_day - dt.timedelta(days=as_of_day.weekday())).isoformat()
    if monday in weeks:
        out["as_of_week"] = monday
    out["note"] = _("Expected: %(model)s with the parameters fitted as of %(date)s; weeks after it are out of"
                    " sample.") % {"model": _model_name(fit),
                                  "date": f"{date_local(value=fit.as_of)} {fit.as_of.astimezone(zone):%H:%M}"}
    if not weeks:
        out["empty_reason"] = _("This fit has no weekly tracking yet: the next fit (`manage.py fit_models`, nightly)"
                                " computes it.")
    return out


def _model_name(fit: ModelFit) -> str:
    return "BG/NBD" if fit.model == ModelFit.Model.BGNBD else "MBG/NBD"


def money(value: Decimal | None) -> str | None:
    """A money figure for the API: exact, as the other money fields (two decimals), or None for n/a."""
    return None if value is None else f"{value:.2f}"


# The papers' order (a JSON column on PostgreSQL keeps its keys in its own order).
PARAM_ORDER = ("r", "alpha", "a", "b", "p", "q", "gamma")


def param_text(params: dict) -> str:
    """r = 0.243, alpha = 4.41, ... (4 significant digits), in the papers' order."""
    names = sorted(params, key=lambda n: (PARAM_ORDER.index(n) if n in PARAM_ORDER else len(PARAM_ORDER), n))
    return ", ".join(f"{name} = {params[name]:.4g}" for name in names
                     if isinstance(params[name], int | float) and math.isfinite(params[name]))
