"""The KPI pages (managers only: the admin site admits nobody else) and the business settings."""

import csv
import datetime as dt
import re
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from core.admin_mixins import ReadOnlyAdminMixin
from core.content import content_texts
from core.drilldown import drilldown_url
from core.templatetags.locale_format import date_html
from metrics.models import MetricSnapshot
from metrics.services.charts import (
    change_judgement, format_change_html, format_value, format_value_html, isolated_text, number_text, svg_line_chart,
    svg_lines_chart,
)
from metrics.services.acquisition import cross_sell_table
from metrics.services.cohorts import cohort_retention
from metrics.services.definitions import ALL, CONVENTIONS, COUNTS, FUNNEL, HEADLINE
from metrics.services.drilldown import input_parts
from metrics.services.home import manager_home
from metrics.services.kpis import kpis_for_period, series_many
from metrics.services.periods import (
    Period, add_months, month_count, month_of, months_between, parse_month, parse_range, period_presets,
)
from metrics.services.predictions import param_text, pool_labels, predicted_value
from metrics.services.funnel import funnel_section
from metrics.services.program import AGENT_COLUMN_MODELS, AGENT_COLUMNS, AGENT_LABELS, agent_table, reasons_table
from winback.models import LeaveReason
from metrics.tasks import refresh_task

CHARTS = ["churn_rate", "retention_rate", "reactivation_rate", "new_customers", "case_win_rate", "nps"]
# What one "refresh now" may recompute (the nightly refresh covers 36 months).
MAX_REFRESH_MONTHS = 36
# The snapshot columns that hold counts: written as integers in the CSV ("12", never "12.0").
_INTEGER_UNITS = ("count",)
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
                path("refresh/", self.admin_site.admin_view(self.refresh_view), name="metrics_kpis_refresh"),
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
            **self.admin_site.each_context(request),
            "title": _("KPIs: %(period)s") % {"period": isolated_text(period.label())},
            "opts": self.model._meta, "period": period, "query": request.GET.urlencode(),
            "presets": _presets(period, chart_range), **data,
        })

    def refresh_view(self, request: HttpRequest) -> HttpResponse:
        """"Refresh now": recompute the shown period's months in the background (after this request commits),
        through the nightly refresh's own task, and come back to the page."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_view_permission(request):
            raise PermissionDenied
        back = reverse("admin:metrics_metricsnapshot_changelist") + (f"?{request.GET.urlencode()}" if request.GET else "")
        try:
            period, _chart_range = _choices(request)
        except ValidationError as exc:
            self.message_user(request, "; ".join(exc.messages), level=messages.ERROR)
            return HttpResponseRedirect(back)
        months = months_between(period.start, period.end)
        if len(months) > MAX_REFRESH_MONTHS:
            self.message_user(request, _("Refresh at most %(max)d months at a time; this period touches %(n)d. The "
                                         "nightly refresh recomputes the last 36 months.")
                              % {"max": MAX_REFRESH_MONTHS, "n": len(months)}, level=messages.ERROR)
            return HttpResponseRedirect(back)
        refresh_task.delay(start=months[0].start.isoformat(), end=months[-1].end.isoformat())
        self.message_user(request, _("Recomputing %(period)s now: reload the page in a minute to see the figures "
                                     "with their new computation time.") % {"period": isolated_text(period.label())},
                          level=messages.SUCCESS)
        return HttpResponseRedirect(back)

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


def bdi(text: str) -> SafeString:
    """Data inside a sentence (a period's label, a name), isolated so that it reads right in right-to-left."""
    return format_html("<bdi>{}</bdi>", text)


def _percent(share: float) -> str:
    """A share as a whole percentage ("42%"), as the cohort and reasons tables show it."""
    # Translators: a percentage, e.g. "12.5%"; %(value)s is the number (it may carry a sign).
    return _("%(value)s%%") % {"value": number_text(share * 100)}


def _ci_html(ci: list[float] | None) -> dict:
    """A confidence interval's bounds (signed fractions), each isolated as left-to-right."""
    if not ci:
        return {}
    return {"ci_low": format_html('<bdi dir="ltr">{}</bdi>', number_text(ci[0], decimals=3)),
            "ci_high": format_html('<bdi dir="ltr">{}</bdi>', number_text(ci[1], decimals=3))}


# Names that stay in Latin script in every language (models, a paper, a command): isolated as left-to-right.
_TERMS = re.compile(r"`[^`]+`|\bM?BG/NBD\b|\bGamma-Gamma\b|Fader, Hardie & Lee 2005|E\[X\([^)]*\)\]")


def _technical_terms(text: str) -> SafeString:
    """``text`` escaped, a `command` as <code> and the models' and papers' names isolated (<bdi dir="ltr">)."""
    out, last = [], 0
    for match in _TERMS.finditer(text):
        out.append(escape(text[last:match.start()]))
        term = match.group()
        out.append(format_html("<code>{}</code>", term[1:-1]) if term.startswith("`")
                   else format_html('<bdi dir="ltr">{}</bdi>', term))
        last = match.end()
    out.append(escape(text[last:]))
    return mark_safe("".join(out))  # noqa: S308 - every piece escaped above


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
        raise ValidationError({"from": _("Charts cover at most 60 months.")})
    return period, chart_range


def _presets(period: Period, chart_range: Period) -> list[dict]:
    """Quarter and year links beside the month picker; the chart range stays as it is."""
    chart = {"from": f"{chart_range.start:%Y-%m}", "to": f"{add_months(chart_range.end, -1):%Y-%m}"}
    return [{"key": key, "label": label, "period": p, "active": p == period,
             "query": urlencode({"start": p.start.isoformat(), "end": p.end.isoformat(), **chart})}
            for key, label, p in period_presets(today=timezone.localdate())]


def _linked(parts: list[dict] | None, period: Period) -> list[dict] | None:
    """The inputs' segments with the admin list of each count."""
    if parts is None:
        return None
    return [{**part, "url": drilldown_url(key=part["key"], start=period.start, end=period.end) if part.get("key") else None}
            for part in parts]


def _page_data(period: Period, chart_range: Period) -> dict:
    current = kpis_for_period(period=period)
    previous = kpis_for_period(period=period.previous())
    cards = []
    for name in HEADLINE:
        f, before = current.figures[name], previous.figures[name]
        d = ALL[name]
        change = None if f.value is None or before.value is None else f.value - before.value
        judgement = change_judgement(change, higher_is_better=d.higher_is_better)
        cards.append({
            "name": name, "label": d.label, "value": format_value_html(f.value, d.unit), "formula": d.formula,
            "inputs": f.inputs(), "parts": _linked(input_parts(f), period), "ci": f.extra.get("ci95"),
            "change": change, "change_text": format_change_html(change, d.unit), "judgement": judgement,
            "better": {"better": True, "worse": False}.get(judgement), "good_direction": d.good_direction,
            "extra": f.extra, **_ci_html(f.extra.get("ci95")),
        })
    counts = [{"name": k, "label": COUNTS[k].label, "value": number_text(current.figures[k].value), "formula": COUNTS[k].formula,
               "url": drilldown_url(key=k, start=period.start, end=period.end)} for k in COUNTS]
    charts = []
    series = series_many(metrics=CHARTS, start=chart_range.start, end=chart_range.end)
    for name in CHARTS:
        points = series[name]
        charts.append({"name": name, "label": ALL[name].label, "formula": ALL[name].formula, "svg": mark_safe(svg_line_chart(
            title=ALL[name].label, unit=ALL[name].unit, points=[(p["period"], p["value"]) for p in points])),
            "points": [(p["period"], format_value_html(p["value"], ALL[name].unit)) for p in points]})
    cohorts = cohort_retention(period=chart_range)
    for row in cohorts["cohorts"]:
        month = month_of(dt.date.fromisoformat(row["cohort"] + "-01"))
        row["url"] = drilldown_url(key="cohort", start=month.start, end=month.end)
        for cell in row["cells"]:
            share = cell["share"]
            cell["text"] = _("n/a") if share is None else _percent(share)
            cell["heat"] = None if share is None else round(share * 10)  # a class of static/metrics/kpis.css
    agents = _agent_rows(agent_table(period=period), period)
    return {
        "cards": cards, "counts": counts, "charts": charts, "cohorts": cohorts,
        "cohort_width": max((len(r["cells"]) for r in cohorts["cohorts"]), default=0),
        "reasons": _reason_rows(reasons_table(period=period), period), "agents": agents, "agent_columns": AGENT_COLUMNS,
        "agent_headers": [(AGENT_LABELS[k], AGENT_COLUMNS[k]) for k in AGENT_COLUMNS],
        "conventions": CONVENTIONS, "source": current.source, "computed_at": current.computed_at,
        "previous": period.previous(), "previous_html": bdi(period.previous().label()), "period_html": bdi(period.label()),
        # The half-open interval [S, E) is notation read left to right, dates and all, in every language.
        "range_html": format_html('<bdi dir="ltr">[{}, {})</bdi>', date_html(period.start), date_html(period.end)),
        "chart_range": chart_range, "chart_last": add_months(chart_range.end, -1),
        "predicted": _predicted_section(period),
        "cross_sell": cross_sell_table(figure=current.figures["cross_sell_rate"]),
        "funnel": funnel_section(figures=current.figures, period=period),
    }


def _agent_rows(rows: list[dict], period: Period) -> list[dict]:
    """Each row with its cells: the text and, for a count of rows, the admin list behind it (the last row is
    the Team's; its cases worked add up the agents' and have no list)."""
    User = get_user_model()
    ids = dict(User.objects.filter(**{f"{User.USERNAME_FIELD}__in": [r["agent"] for r in rows[:-1]]})
               .values_list(User.USERNAME_FIELD, "pk"))
    out = []
    for i, row in enumerate(rows):
        team = i == len(rows) - 1
        parameter = "team" if team else ids.get(row["agent"])
        cells = []
        for column in AGENT_COLUMNS:
            value = row[column]
            if column in ("reach_rate", "conversion"):
                text = _("n/a") if value is None else number_text(value, decimals=2)
            elif column == "reactivated_revenue":
                text = number_text(value, decimals=2)
            else:
                text = number_text(int(value))
            key = f"agent_{column}:{parameter}"
            linked = (column in AGENT_COLUMN_MODELS and parameter is not None
                      and not (team and column == "cases_worked"))
            cells.append({"text": text, "key": key if linked else None,
                          "url": drilldown_url(key=key, start=period.start, end=period.end) if linked else None})
        out.append({**row, "cells": cells, "team": team})
    return out


def _reason_rows(data: dict, period: Period) -> dict:
    """The reasons table with the admin list of the calls behind each count, the trend's months' too."""
    reasons = list(LeaveReason.objects.filter(name__in=[r["reason"] for r in data["rows"]]))
    ids = {reason.name: reason.pk for reason in reasons}
    # The rows keep the stored name (the CSV's and the snapshot's key); the page shows the manager's wording
    # in the reader's language.
    names = content_texts(objects=reasons, field="name", language=get_language() or "en")
    months = [month_of(dt.date.fromisoformat(f"{label}-01")) for label in data["months"]]
    rows = []
    for r in data["rows"]:
        key = f"reason:{ids[r['reason']]}" if r["reason"] in ids else None
        trend = [{"text": number_text(n), "url": drilldown_url(key=key, start=m.start, end=m.end) if key else None}
                 for n, m in zip(data["trend"].get(r["reason"], []), months)]
        rows.append({**r, "key": key, "trend_cells": trend, "count_text": number_text(r["count"]),
                     "reason_text": names.get(ids.get(r["reason"]), r["reason"]),
                     "share_text": _("n/a") if r["share"] is None else _percent(r["share"]),
                     "url": drilldown_url(key=key, start=period.start, end=period.end) if key else None})
    return {**data, "rows": rows}


def _predicted_section(period: Period) -> dict:
    """The "Predicted customer value" section: stored predictions and the fit's stored tracking only."""
    data = predicted_value(period=period)
    pools, tracking = data["pools"], data["tracking"]
    cards = []
    for key, label in pool_labels().items():
        p = pools[key]
        cards.append({"key": key, "label": label, "definition": p["definition"], "count": p["count"],
                      "sum": format_value_html(p["sum"], "money"), "mean": format_value(p["mean"], "money"),
                      "url": drilldown_url(key=f"predicted:{key}", start=period.start, end=period.end)})
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
        "rows": [(w, number_text(a), number_text(e, decimals=1))
                 for w, a, e in zip(tracking["weeks"], tracking["actual"], tracking["expected"])],
        "fit": fit, "params": format_html('<bdi dir="ltr">{}</bdi>', param_text(fit["params"])) if fit else "",
        "fit_label": bdi(fit["label"]) if fit else "",
        "unavailable_reason_html": _technical_terms(pools["unavailable_reason"]),
        "note_html": _technical_terms(tracking["note"]), "empty_reason_html": _technical_terms(tracking["empty_reason"]),
        "definition_html": _technical_terms(tracking["definition"]),
        "log_likelihood": _("n/a") if not fit or fit["log_likelihood"] is None
        else format_html('<bdi dir="ltr">{}</bdi>', number_text(fit["log_likelihood"], decimals=2)),
        "customers": number_text(fit["customers"]) if fit else "",
        "repeat_buyers": number_text(fit["repeat_buyers"]) if fit else "",
    }


def _integer(value):
    """A count as an integer ("12", never "12.0"); anything else as it is."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _csv_rows(table: str, period: Period, chart_range: Period) -> list[list] | None:
    if table == "headline":
        figures = kpis_for_period(period=period).figures
        rows = [["metric", "label", "value", "numerator", "denominator", "definition"]]
        for name in [*COUNTS, *HEADLINE, *(k for k in FUNNEL if k not in HEADLINE)]:
            f, unit = figures[name], ALL[name].unit
            value = _integer(f.value) if unit in _INTEGER_UNITS else f.value
            # A rate's numerator and denominator are counts, a money figure's are sums: whole ones as integers.
            rows.append([name, ALL[name].label, value, _integer(f.numerator), _integer(f.denominator), ALL[name].formula])
        return rows
    if table == "series":
        rows = [["month", *CHARTS]]
        series = series_many(metrics=CHARTS, start=chart_range.start, end=chart_range.end)
        for i, p in enumerate(series[CHARTS[0]]):
            rows.append([p["period"], *[_integer(series[name][i]["value"]) if ALL[name].unit in _INTEGER_UNITS
                                        else series[name][i]["value"] for name in CHARTS]])
        return rows
    if table == "cohorts":
        data = cohort_retention(period=chart_range)
        width = max((len(r["cells"]) for r in data["cohorts"]), default=0)
        rows = [["cohort", "customers", *[f"month {k}" for k in range(1, width + 1)]]]
        for r in data["cohorts"]:
            rows.append([r["cohort"], _integer(r["customers"]), *[c["share"] for c in r["cells"]]])
        return rows
    if table == "reasons":
        data = reasons_table(period=period)
        rows = [["reason", "count", "share", *data["months"]]]
        for r in data["rows"]:
            rows.append([r["reason"], _integer(r["count"]), r["share"],
                         *[_integer(n) for n in data["trend"].get(r["reason"], [])]])
        return rows
    if table == "agents":
        rows = [["agent", *AGENT_COLUMNS]]
        for r in agent_table(period=period):
            rows.append([r["agent"], *[r[k] if k in ("reach_rate", "reactivated_revenue") else _integer(r[k])
                                       for k in AGENT_COLUMNS]])
        return rows
    return None


def home_section(request: HttpRequest) -> dict:
    """The KPI part of the managers' home (core.admin_site): the figures with their trends and the links to
    the KPI page and the lists behind them."""
    home = manager_home()
    kpi_page = reverse("admin:metrics_metricsnapshot_changelist")
    month = urlencode({"month": f"{home.period.start:%Y-%m}"})
    lists = {"churn_rate": "L0", "reactivation_rate": "RP", "case_win_rate": "cases:won",
             "incremental_reactivation": "cases:contacted", "revenue_won_back": "cases:won",
             "queue_depth": "queue", "oldest_case_age_days": "queue"}
    for f in home.figures:
        f.sparkline = mark_safe(f.sparkline)  # noqa: S308 - built by charts.svg_sparkline, every text escaped
        f.inputs = _linked(f.inputs, home.period)
        if f.name in ALL:
            f.links["detail"] = f"{kpi_page}?{month}#kpi-card-{f.name}"
        f.links["list"] = drilldown_url(key=lists[f.name], start=home.period.start, end=home.period.end)
    return {"template": "admin/metrics/home.html", "home": home, "kpi_page": f"{kpi_page}?{month}",
            "period_html": bdi(home.period.label()), "previous_html": bdi(home.previous.label()),
            "queue_since_html": date_html(home.queue_since)}


admin.site.register_home_section(home_section)
