"""The KPI pages (managers only: the admin site admits nobody else) and the business settings."""

import csv
import re

from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _

from core.admin_mixins import ReadOnlyAdminMixin
from metrics.models import MetricSnapshot
from metrics.services.charts import format_value, svg_line_chart, svg_lines_chart
from metrics.services.cohorts import cohort_retention
from metrics.services.definitions import ALL, CONVENTIONS, COUNTS, HEADLINE
from metrics.services.kpis import kpis_for_period, series_for
from metrics.services.periods import Period, add_months, month_count, month_of, parse_month, parse_range
from metrics.services.predictions import param_text, pool_labels, predicted_value
from metrics.services.program import AGENT_COLUMNS, agent_table, reasons_table

CHARTS = ["churn_rate", "retention_rate", "reactivation_rate", "new_customers", "case_win_rate", "nps"]
_FORMULA_START = re.compile(r"^[=+\-@\t\r]")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def csv_safe(value) -> str:
    """A cell a spreadsheet will not run: text starting with = + - @ gets a leading apostrophe."""
    text = "" if value is None else str(value)
    if _FORMULA_START.match(text) and not _NUMBER.match(text):
        return "'" + text
    return text


@admin.register(MetricSnapshot)
class KpiAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The changelist of snapshots is the KPI page; the raw rows are under ?raw=1."""

    list_display = ("metric", "start", "end", "value", "numerator", "denominator", "computed_at")
    list_filter = ("metric",)
    date_hierarchy = "start"

    def get_urls(self):
        return [path("csv/<str:table>/", self.admin_site.admin_view(self.csv_view), name="metrics_kpis_csv"),
                *super().get_urls()]

    def changelist_view(self, request: HttpRequest, extra_context=None):
        if request.GET.get("raw"):
            request.GET = request.GET.copy()
            request.GET.pop("raw")
            return super().changelist_view(request, extra_context)
        try:
            period, chart_range = _choices(request)
        except ValidationError as exc:
            period = _default_period()
            chart_range = _default_chart_range(period)
            self.message_user(request, "; ".join(exc.messages), level="error")
        data = _page_data(period, chart_range)
        return TemplateResponse(request, "admin/metrics/kpis.html", {
            **self.admin_site.each_context(request), "title": f"KPIs: {period.label()}", "opts": self.model._meta,
            "period": period, "query": request.GET.urlencode(), **data,
        })

    def csv_view(self, request: HttpRequest, table: str) -> HttpResponse:
        if not self.has_view_permission(request):
            raise Http404
        try:
            period, chart_range = _choices(request)
        except ValidationError as exc:
            return HttpResponse("; ".join(exc.messages), status=400, content_type="text/plain")
        rows = _csv_rows(table, period, chart_range)
        if rows is None:
            raise Http404(f"No table '{table}'.")
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="kpis-{table}-{period.label().replace(" ", "")}.csv"'
        writer = csv.writer(response)
        for row in rows:
            writer.writerow([csv_safe(cell) for cell in row])
        return response


def _default_period() -> Period:
    return month_of(add_months(timezone.localdate().replace(day=1), -1))  # the last complete month


def _default_chart_range(period: Period) -> Period:
    last = month_of(period.start)
    return Period(add_months(last.start, -11), last.end)


def _choices(request: HttpRequest) -> tuple[Period, Period]:
    params = request.GET
    if params.get("start") or params.get("end"):
        period = parse_range(params.get("start", ""), params.get("end", ""))
    elif params.get("month"):
        period = parse_month(params["month"])
    else:
        period = _default_period()
    if params.get("from") or params.get("to"):
        chart_range = Period(parse_month(params.get("from", ""), field="from").start,
                             parse_month(params.get("to", ""), field="to").end)
    else:
        chart_range = _default_chart_range(period)
    if month_count(chart_range) > 60:
        raise ValidationError({"from": "Charts cover at most 60 months."})
    return period, chart_range


def _page_data(period: Period, chart_range: Period) -> dict:
    current = kpis_for_period(period=period)
    previous = kpis_for_period(period=period.previous())
    cards = []
    for name in HEADLINE:
        f, before = current.figures[name], previous.figures[name]
        d = ALL[name]
        change = None if f.value is None or before.value is None else f.value - before.value
        cards.append({
            "name": name, "label": d.label, "value": format_value(f.value, d.unit), "formula": d.formula,
            "inputs": f.inputs(), "ci": f.extra.get("ci95"), "change": change,
            "change_text": "" if change is None else (("+" if change >= 0 else "") + format_value(change, d.unit)),
            "better": None if change is None or change == 0 else (change > 0) == d.higher_is_better,
            "extra": f.extra,
        })
    counts = [{"name": k, "label": COUNTS[k].label, "value": int(current.figures[k].value), "formula": COUNTS[k].formula} for k in COUNTS]
    charts = []
    for name in CHARTS:
        points = series_for(metric=name, start=chart_range.start, end=chart_range.end)
        charts.append({"name": name, "formula": ALL[name].formula, "svg": mark_safe(svg_line_chart(
            title=ALL[name].label, unit=ALL[name].unit, points=[(p["period"], p["value"]) for p in points])),
            "points": [(p["period"], format_value(p["value"], ALL[name].unit)) for p in points]})
    cohorts = cohort_retention(period=chart_range)
    for row in cohorts["cohorts"]:
        for cell in row["cells"]:
            share = cell["share"]
            cell["text"] = "n/a" if share is None else f"{share * 100:.0f}%"
            cell["heat"] = None if share is None else round(share * 10)  # a class of static/metrics/kpis.css
    return {
        "cards": cards, "counts": counts, "charts": charts, "cohorts": cohorts,
        "cohort_width": max((len(r["cells"]) for r in cohorts["cohorts"]), default=0),
        "reasons": reasons_table(period=period), "agents": agent_table(period=period), "agent_columns": AGENT_COLUMNS,
        "conventions": CONVENTIONS, "source": current.source, "computed_at": current.computed_at,
        "previous": period.previous(), "chart_range": chart_range, "chart_last": add_months(chart_range.end, -1),
        "predicted": _predicted_section(period),
    }


def _predicted_section(period: Period) -> dict:
    """The "Predicted customer value" section: stored predictions and the fit's stored tracking only."""
    data = predicted_value(period=period)
    pools, tracking = data["pools"], data["tracking"]
    cards = []
    for key, label in pool_labels().items():
        p = pools[key]
        cards.append({"key": key, "label": label, "definition": p["definition"], "count": p["count"],
                      "sum": format_value(p["sum"], "money"), "mean": format_value(p["mean"], "money")})
    chart = None
    if tracking["weeks"]:
        weeks = tracking["weeks"]
        marker = weeks.index(tracking["as_of_week"]) if tracking["as_of_week"] in weeks else None
        chart = mark_safe(svg_lines_chart(
            title=_("Repeat purchases per week: expected vs actual"), labels=weeks, unit="count",
            series=[("actual", _("Actual"), tracking["actual"]), ("expected", _("Expected"), tracking["expected"])],
            marker=marker, marker_label=_("fit as of this week"), show_title=False))
    fit = tracking["fit"]
    return {
        "available": pools["available"], "unavailable_reason": pools["unavailable_reason"], "cards": cards,
        "count_definition": pools["count_definition"], "as_of": pools["as_of"], "scored_at": pools["scored_at"],
        "tracking": tracking, "chart": chart,
        "rows": [(w, a, f"{e:,.1f}") for w, a, e in zip(tracking["weeks"], tracking["actual"], tracking["expected"])],
        "fit": fit, "params": param_text(fit["params"]) if fit else "",
        "log_likelihood": "n/a" if not fit or fit["log_likelihood"] is None else f"{fit['log_likelihood']:,.2f}",
    }


def _csv_rows(table: str, period: Period, chart_range: Period) -> list[list] | None:
    if table == "headline":
        figures = kpis_for_period(period=period).figures
        rows = [["metric", "label", "value", "numerator", "denominator", "definition"]]
        for name in [*COUNTS, *HEADLINE]:
            f = figures[name]
            rows.append([name, ALL[name].label, f.value, f.numerator, f.denominator, ALL[name].formula])
        return rows
    if table == "series":
        rows = [["month", *CHARTS]]
        series = {name: series_for(metric=name, start=chart_range.start, end=chart_range.end) for name in CHARTS}
        for i, p in enumerate(series[CHARTS[0]]):
            rows.append([p["period"], *[series[name][i]["value"] for name in CHARTS]])
        return rows
    if table == "cohorts":
        data = cohort_retention(period=chart_range)
        width = max((len(r["cells"]) for r in data["cohorts"]), default=0)
        rows = [["cohort", "customers", *[f"month {k}" for k in range(1, width + 1)]]]
        for r in data["cohorts"]:
            rows.append([r["cohort"], r["customers"], *[c["share"] for c in r["cells"]]])
        return rows
    if table == "reasons":
        data = reasons_table(period=period)
        rows = [["reason", "count", "share", *data["months"]]]
        for r in data["rows"]:
            rows.append([r["reason"], r["count"], r["share"], *data["trend"].get(r["reason"], [])])
        return rows
    if table == "agents":
        rows = [["agent", *AGENT_COLUMNS]]
        for r in agent_table(period=period):
            rows.append([r["agent"], *[r[k] for k in AGENT_COLUMNS]])
        return rows
    return None
