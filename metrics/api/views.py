"""KPIs out: GET /api/metrics/, /api/metrics/series/, /api/metrics/cohorts/, /api/metrics/predictions/
(managers only)."""

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.roles import user_is_manager
from metrics.services.cohorts import cohort_retention
from metrics.services.definitions import ALL, CONVENTIONS, COUNTS
from metrics.services.kpis import kpis_for_period, series_for
from metrics.services.periods import Period, parse_month, parse_range
from metrics.services.predictions import POOLS, money, predicted_value

GRAINS = ("month",)
# What one request may ask for: a series point and a cohort row each cost a pass over the month's data.
MAX_SERIES_MONTHS = 120
MAX_COHORT_MONTHS = 60


class IsManager(BasePermission):
    message = gettext_lazy("KPIs are for managers.")

    def has_permission(self, request, view) -> bool:
        return user_is_manager(request.user)


def period_from(request: Request) -> Period:
    params = request.query_params
    if "month" in params:
        if "start" in params or "end" in params:
            raise ValidationError({"month": _("Give either month or start and end, not both.")})
        return parse_month(params["month"])
    if "start" in params and "end" in params:
        return parse_range(params["start"], params["end"])
    # Translators: month=, start= and end= are the request's parameters, as they are typed: not to be translated.
    raise ValidationError({"start": _("Give month=YYYY-MM, or start=YYYY-MM-DD and end=YYYY-MM-DD (end exclusive).")})


class MetricsView(APIView):
    permission_classes = [IsManager]

    @extend_schema(parameters=[
        OpenApiParameter("month", OpenApiTypes.STR, description="YYYY-MM"),
        OpenApiParameter("start", OpenApiTypes.DATE), OpenApiParameter("end", OpenApiTypes.DATE, description="exclusive"),
        OpenApiParameter("live", OpenApiTypes.BOOL, description="compute now instead of reading the snapshot"),
    ], responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        """Every count and rate of docs/metrics.md for the period, each with its definition."""
        period = period_from(request)
        result = kpis_for_period(period=period, live=request.query_params.get("live") in ("1", "true"))
        figures = result.figures
        return Response({
            "period": {"start": period.start, "end": period.end, "label": period.label()},
            "source": result.source, "computed_at": result.computed_at,
            "counts": {k: int(figures[k].value) for k in COUNTS},
            "metrics": {k: f.as_dict() for k, f in figures.items() if k not in COUNTS},
            "definitions": {k: ALL[k].formula for k in COUNTS},
            "conventions": CONVENTIONS,
        })


class MetricSeriesView(APIView):
    permission_classes = [IsManager]

    @extend_schema(parameters=[
        OpenApiParameter("metric", OpenApiTypes.STR, required=True), OpenApiParameter("grain", OpenApiTypes.STR, enum=GRAINS),
        OpenApiParameter("start", OpenApiTypes.DATE, required=True),
        OpenApiParameter("end", OpenApiTypes.DATE, required=True,
                         description=f"exclusive; at most {MAX_SERIES_MONTHS} months after start"),
    ], responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        """One metric month by month."""
        params = request.query_params
        metric = params.get("metric", "")
        if metric not in ALL:
            raise ValidationError({"metric": _("Unknown metric '%(metric)s'; one of: %(known)s.")
                                             % {"metric": metric, "known": ", ".join(sorted(ALL))}})
        grain = params.get("grain", "month")
        if grain not in GRAINS:
            raise ValidationError({"grain": _("'%(grain)s' is not supported; use: %(known)s.")
                                            % {"grain": grain, "known": ", ".join(GRAINS)}})
        period = parse_range(params.get("start", ""), params.get("end", ""), max_months=MAX_SERIES_MONTHS)
        points = series_for(metric=metric, start=period.start, end=period.end)
        return Response({"metric": metric, "grain": grain, "definition": ALL[metric].formula, "unit": ALL[metric].unit,
                         "good_direction": ALL[metric].good_direction, "points": points})


class CohortsView(APIView):
    permission_classes = [IsManager]

    @extend_schema(parameters=[
        OpenApiParameter("start", OpenApiTypes.DATE, description="with end; without both, the last 12 cohorts"),
        OpenApiParameter("end", OpenApiTypes.DATE, description=f"exclusive; at most {MAX_COHORT_MONTHS} months after start"),
    ], responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        """Cohort retention: acquisition month x months since, the share of the cohort active at each month's start."""
        params = request.query_params
        period = None
        if "start" in params or "end" in params:
            period = parse_range(params.get("start", ""), params.get("end", ""), max_months=MAX_COHORT_MONTHS)
        return Response(cohort_retention(period=period))


class PredictedValueView(APIView):
    permission_classes = [IsManager]

    @extend_schema(parameters=[
        OpenApiParameter("month", OpenApiTypes.STR, description="YYYY-MM"),
        OpenApiParameter("start", OpenApiTypes.DATE), OpenApiParameter("end", OpenApiTypes.DATE, description="exclusive"),
    ], responses=OpenApiTypes.OBJECT, description=(
        "pools.lapsed / won_back / base: sum, count and mean of the predicted 12-month CLV (money as strings with"
        " two decimals; null when n/a), each with its definition; available = false (with unavailable_reason)"
        " without a usable fit. tracking: repeat purchase days per week, actual and expected by the latest usable"
        " BG/NBD (else MBG/NBD) fit, with the fit's parameters and as-of."))
    def get(self, request: Request) -> Response:
        """Predicted customer value: the predicted CLV of the lapsed pool, of the customers won back in the period
        and of the whole base, and how the purchase model tracks the weekly repeat purchases."""
        period = period_from(request)
        data = predicted_value(period=period)
        pools, tracking = data["pools"], data["tracking"]
        return Response({
            "period": {"start": period.start, "end": period.end, "label": period.label()},
            "available": pools["available"], "unavailable_reason": pools["unavailable_reason"],
            "as_of": pools["as_of"], "scored_at": pools["scored_at"],
            "pools": {k: {"sum": money(pools[k]["sum"]), "count": pools[k]["count"] if pools["available"] else None,
                          "mean": money(pools[k]["mean"]), "definition": pools[k]["definition"]} for k in POOLS},
            "count_definition": pools["count_definition"],
            "tracking": {k: tracking[k] for k in ("fit", "weeks", "actual", "expected", "until", "as_of_week",
                                                  "definition", "note", "empty_reason")},
        })
