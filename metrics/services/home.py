"""The manager's home: the few figures that matter, each with its trend, its change against the period before
and whether that change is good news (definitions.Definition.higher_is_better).

The period figures are the KPI page's own (kpis.kpis_for_period, kpis.series_many) for the last complete
month; the queue's are read now and at the start of each month before (queue.queue_figures).
"""

import datetime as dt
from dataclasses import dataclass, field

from django.utils import timezone

from metrics.services.charts import (
    change_judgement, format_change, format_change_html, format_value, format_value_html, svg_sparkline,
)
from metrics.services.definitions import ALL, HOME, QUEUE, Definition
from metrics.services.drilldown import input_parts
from metrics.services.kpis import kpis_for_period, series_many
from metrics.services.periods import Period, add_months, month_of
from metrics.services.queue import queue_figures

SPARK_MONTHS = 12


@dataclass
class HomeFigure:
    name: str
    label: str
    definition: str
    unit: str
    good_direction: str  # up | down
    value: float | None
    previous: float | None
    change: float | None  # value - previous (a rate's change is in fractions: 0.012 is 1.2 pp)
    judgement: str  # better | worse | same | "" (no change to judge)
    value_text: str
    change_text: str
    value_html: str  # the texts for a page: the signed number isolated as left-to-right
    change_html: str
    sparkline: str  # an SVG
    points: list[tuple[str, float | None]]
    inputs: list[dict] | None = None  # the counts behind the figure (drilldown.input_parts)
    inputs_text: str = ""
    links: dict[str, str] = field(default_factory=dict)  # filled by the admin: the pages to read more


@dataclass
class Home:
    period: Period
    previous: Period
    source: str
    computed_at: dt.datetime | None
    now: dt.datetime
    queue_since: dt.datetime
    figures: list[HomeFigure]


def home_period(*, today: dt.date) -> Period:
    """The last complete month, as the KPI page shows by default."""
    return month_of(add_months(today.replace(day=1), -1))


def _figure(name: str, d: Definition, *, value: float | None, previous: float | None,
            points: list[tuple[str, float | None]], inputs: list[dict] | None = None, inputs_text: str = "") -> HomeFigure:
    change = None if value is None or previous is None else value - previous
    return HomeFigure(
        name=name, label=str(d.label), definition=str(d.formula), unit=d.unit, good_direction=d.good_direction,
        value=value, previous=previous, change=change, judgement=change_judgement(change, higher_is_better=d.higher_is_better),
        value_text=format_value(value, d.unit), change_text=format_change(change, d.unit),
        value_html=format_value_html(value, d.unit), change_html=format_change_html(change, d.unit),
        sparkline=svg_sparkline(title=str(d.label), points=points, unit=d.unit), points=points,
        inputs=inputs, inputs_text=inputs_text)


def manager_home(*, now: dt.datetime | None = None) -> Home:
    now = now or timezone.now()
    today = timezone.localtime(now).date()
    period = home_period(today=today)
    current, before = kpis_for_period(period=period), kpis_for_period(period=period.previous())
    series = series_many(metrics=HOME, start=add_months(period.start, -(SPARK_MONTHS - 1)), end=period.end)
    figures = []
    for name in HOME:
        f = current.figures[name]
        figures.append(_figure(name, ALL[name], value=f.value, previous=before.figures[name].value,
                               points=[(p["period"], p["value"]) for p in series[name]],
                               inputs=input_parts(f), inputs_text=f.inputs()))
    # The queue at the start of each of the last months, and now; its change is against this month's start.
    this_month = today.replace(day=1)
    starts = [month_of(add_months(this_month, -k)) for k in range(SPARK_MONTHS - 1, -1, -1)]
    instants = [p.bounds()[0] for p in starts] + [now]
    labels = [p.label() for p in starts] + [timezone.localtime(now).strftime("%Y-%m-%d %H:%M")]
    queue = queue_figures(instants=instants)
    for name, d in QUEUE.items():
        values = [q[name] for q in queue]
        figures.append(_figure(name, d, value=values[-1], previous=values[-2], points=list(zip(labels, values))))
    return Home(period=period, previous=period.previous(), source=current.source, computed_at=current.computed_at,
                now=now, queue_since=instants[-2], figures=figures)
