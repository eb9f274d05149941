import datetime as dt
from collections.abc import Collection
from decimal import Decimal

from django.db.models import Count, Max, Q, QuerySet, Sum
from django.utils.translation import gettext as _

from crm.models import Customer
from predictions.models import CustomerPrediction, ModelFit


def fit_latest_usable(*, model: str) -> ModelFit | None:
    """The fit the product uses for ``model``: the latest that converged on enough data."""
    return ModelFit.objects.filter(model=model, usable=True).order_by("-id").first()


def fits_exist() -> bool:
    """Whether any fit is usable (model_fit_usable serves it)."""
    return ModelFit.objects.filter(usable=True).exists()


def fit_for_tracking() -> ModelFit | None:
    """The fit whose weekly tracking the KPI page draws: the latest usable BG/NBD fit, else MBG/NBD's."""
    return fit_latest_usable(model=ModelFit.Model.BGNBD) or fit_latest_usable(model=ModelFit.Model.MBGNBD)


def clv_pool_predictions(*, pool: str, won_back_customers: QuerySet | Collection[int]) -> QuerySet[CustomerPrediction]:
    """The predictions a pool of predicted_clv_pools sums and counts (the KPI page lists their customers)."""
    condition = {"lapsed": Q(customer__status__in=[Customer.Status.LAPSED, Customer.Status.CANCELLED]),
                 "won_back": Q(customer_id__in=won_back_customers), "base": Q()}[pool]
    return CustomerPrediction.objects.filter(predicted_clv_12m__isnull=False).filter(condition)


def predicted_clv_pools(*, period_start: dt.datetime, period_end: dt.datetime,
                        won_back_customers: QuerySet | Collection[int]) -> dict:
    """The predicted 12-month CLV (CustomerPrediction.predicted_clv_12m) summed over three pools, each with
    its count, mean and a one-line definition:

    - "lapsed": customers whose status is lapsed or cancelled now;
    - "won_back": ``won_back_customers``, the customers won back in [period_start, period_end) (the caller
      knows the win-back cases: a query of customer ids or the ids themselves);
    - "base": every customer with a prediction.

    "available" is False, with "unavailable_reason", when no usable purchase model (BG/NBD or MBG/NBD) or
    no usable Gamma-Gamma fit exists: the CLV needs both. Reads the stored predictions only."""
    Model = ModelFit.Model
    fit = fit_for_tracking()
    spend_fit = fit_latest_usable(model=Model.GAMMA_GAMMA)
    pools = {
        "lapsed": (clv_pool_predictions(pool="lapsed", won_back_customers=won_back_customers), _(
            "Sum of the predicted 12-month CLV of the customers whose status is lapsed or cancelled now"
            " (customers without a prediction are not counted).")),
        "won_back": (clv_pool_predictions(pool="won_back", won_back_customers=won_back_customers), _(
            "Sum of the predicted 12-month CLV of the customers with a win-back case closed as won in the period"
            " (their prediction as of the latest fit, after their return).")),
        "base": (clv_pool_predictions(pool="base", won_back_customers=won_back_customers), _(
            "Sum of the predicted 12-month CLV of every customer with a prediction: the discounted margin"
            " of the next 12 months' expected purchases (BG/NBD or MBG/NBD, times Gamma-Gamma's"
            " expected spend).")),
    }
    out: dict = {
        "period_start": period_start, "period_end": period_end, "available": fit is not None and spend_fit is not None,
        "unavailable_reason": "", "fit": fit, "spend_fit": spend_fit, "as_of": fit.as_of if fit else None,
        "scored_at": None,
        "count_definition": _("Count: the customers of the pool with a predicted CLV; mean = sum / count."),
    }
    if not out["available"]:
        missing = _("a usable BG/NBD or MBG/NBD fit") if fit is None else _("a usable Gamma-Gamma fit")
        out["unavailable_reason"] = _(
            "n/a: there is no %(missing)s yet. Run `manage.py fit_models` (the fit also runs nightly) once the"
            " order history has enough repeat buyers.") % {"missing": missing}
    figures = {}
    if out["available"]:
        # One aggregate per pool: the base needs no join, the lapsed pool joins only its customers (index on
        # status), the won back ones are few; one statement with a join for all would read every customer.
        for name, (scored, _definition) in pools.items():
            extra = {"scored_at": Max("scored_at")} if name == "base" else {}
            row = scored.aggregate(sum=Sum("predicted_clv_12m"), count=Count("pk"), **extra)
            figures.update({f"{name}_sum": row["sum"], f"{name}_count": row["count"]})
            out["scored_at"] = row.get("scored_at", out["scored_at"])
    for name, (_condition, definition) in pools.items():
        count = int(figures.get(f"{name}_count") or 0)
        total = figures.get(f"{name}_sum")
        if out["available"] and total is None:
            total = Decimal("0.00")  # no customer of the pool has a prediction: the sum is 0, the mean n/a
        mean = (total / count).quantize(Decimal("0.01")) if count and total is not None else None
        out[name] = {"sum": total, "count": count, "mean": mean, "definition": definition}
    return out
