"""From a count on a KPI page to the rows behind it: a registry of named resolvers and the admin list filter
that applies them.

An app that shows counts (metrics) registers, for each count, the model whose admin list shows its rows and
a resolver that returns their ids, computed by the same statement as the count, so that the list is as long
as the number on the page. The KPI page links to ``<that model's changelist>?kpi=<key>&period=<S>..<E>``;
the changelist's ``KpiDrilldownFilter`` (in the model admin's list_filter) keeps the rows whose id the
resolver returns. core knows no app above it: the apps register themselves (in their AppConfig.ready).

A family of counts, one per agent or per reason, is registered once with a ``parse`` of its parameter: its
keys are ``<family>:<parameter>`` (``agent_wins:12``), parse turns the parameter into the resolver's third
argument and the text the sidebar shows, or raises ValueError saying what is wrong with it.
"""

import datetime as dt
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.db.models.expressions import RawSQL
from django.http import HttpRequest
from django.urls import reverse
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.bounds import EARLIEST_BUSINESS_YEAR, latest_business_year
from core.dialect import is_postgresql

# ids of the rows behind a count; a queryset of the model is used as a subquery as it is. A family's
# resolver takes the parsed parameter as a third argument.
Resolver = Callable[..., "Iterable[int] | QuerySet"]
Parser = Callable[[str], tuple[object, str]]


@dataclass(frozen=True)
class Drilldown:
    key: str
    model: type[Model]
    label: str | Promise
    resolve: Resolver
    needs_period: bool = True
    parse: Parser | None = None


_REGISTRY: dict[str, Drilldown] = {}

KPI_PARAMETER = "kpi"
PERIOD_PARAMETER = "period"


def drilldown_register(*, key: str, model: type[Model], label: str | Promise, resolve: Resolver,
                       needs_period: bool = True, parse: Parser | None = None) -> None:
    """Register (or replace, so that a reloaded app does not fail) the resolver of one count, or with
    ``parse`` of a family of counts (its label may name the parameter as %(parameter)s)."""
    _REGISTRY[key] = Drilldown(key=key, model=model, label=label, resolve=resolve, needs_period=needs_period,
                               parse=parse)


def _lookup(key: str) -> tuple[Drilldown, str | None] | None:
    """The count of ``key`` and, for a family's key, its parameter's text (a family's bare name is no count)."""
    drilldown = _REGISTRY.get(key)
    if drilldown is not None:
        return None if drilldown.parse is not None else (drilldown, None)
    family, colon, parameter = key.rpartition(":")
    drilldown = _REGISTRY.get(family) if colon else None
    if drilldown is None or drilldown.parse is None:
        return None
    return drilldown, parameter


def drilldown_get(key: str) -> Drilldown | None:
    found = _lookup(key)
    return found[0] if found else None


def drilldown_query(*, key: str, start: dt.date | None = None, end: dt.date | None = None) -> str:
    """The changelist's query string for the rows behind a count of [start, end)."""
    params = {KPI_PARAMETER: key}
    if start is not None and end is not None:
        params[PERIOD_PARAMETER] = f"{start.isoformat()}..{end.isoformat()}"
    return urlencode(params)


def drilldown_url(*, key: str, start: dt.date | None = None, end: dt.date | None = None) -> str | None:
    """The admin list of the rows behind a count (None for a key nobody registered)."""
    drilldown = drilldown_get(key)
    if drilldown is None:
        return None
    opts = drilldown.model._meta
    changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    if not drilldown.needs_period:
        start = end = None
    return f"{changelist}?{drilldown_query(key=key, start=start, end=end)}"


def drilldown_label(key: str) -> str:
    """What the list shows it is filtered by: the count's label, a family's with its parameter named (the key
    itself when it names no count)."""
    found = _lookup(key)
    if found is None:
        return key
    drilldown, parameter = found
    if parameter is None:
        return str(drilldown.label)
    try:
        shown = drilldown.parse(parameter)[1]
    except ValueError:
        return key
    return str(drilldown.label) % {"parameter": shown}


def parse_period(text: str) -> tuple[dt.date, dt.date]:
    """``YYYY-MM-DD..YYYY-MM-DD`` (end exclusive) inside the business years; ValueError says what is wrong."""
    start_text, dots, end_text = (text or "").partition("..")
    try:
        start, end = dt.date.fromisoformat(start_text), dt.date.fromisoformat(end_text)
    except ValueError:
        raise ValueError(_("'%(text)s' is not a period: use YYYY-MM-DD..YYYY-MM-DD (end exclusive).")
                         % {"text": text}) from None
    first, last = EARLIEST_BUSINESS_YEAR, latest_business_year()
    if not dots or end <= start or start.year < first or end > dt.date(last + 1, 1, 1):
        raise ValueError(_("'%(text)s' is not a period between %(first)d and %(last)d that ends after it starts.")
                         % {"text": text, "first": first, "last": last})
    return start, end


def _ids_subquery(ids: Iterable[int]) -> RawSQL:
    """The ids as one parameter, however many (core.dialect's id lists): an array on PostgreSQL, a JSON list
    elsewhere."""
    ids = [int(i) for i in ids]
    if is_postgresql():
        return RawSQL("SELECT unnest(%s::bigint[])", (ids,))
    return RawSQL("SELECT value FROM json_each(%s)", (json.dumps(ids),))


def drilldown_filter(queryset: QuerySet, *, key: str, period: str | None) -> QuerySet:
    """The rows of ``queryset`` behind the count ``key`` of ``period``; ValueError for an unknown key, a key of
    another model, a family's bad parameter, or a missing or bad period."""
    found = _lookup(key)
    if found is None or found[0].model is not queryset.model:
        raise ValueError(_("'%(key)s' is not a figure listed here.") % {"key": key})
    drilldown, parameter = found
    arguments = () if parameter is None else (drilldown.parse(parameter)[0],)
    start = end = None
    if drilldown.needs_period:
        if not period:
            raise ValueError(_("This figure needs its period (period=YYYY-MM-DD..YYYY-MM-DD)."))
        start, end = parse_period(period)
    ids = drilldown.resolve(start, end, *arguments)
    if isinstance(ids, QuerySet):
        return queryset.filter(pk__in=ids.values("pk"))
    return queryset.filter(pk__in=_ids_subquery(ids))


class KpiDrilldownFilter(admin.SimpleListFilter):
    """The rows behind a count on a KPI page. It shows in the sidebar only while it is in use (it is entered
    through a count's link, never picked from a list)."""

    title = gettext_lazy("KPI figure")
    parameter_name = KPI_PARAMETER

    def __init__(self, request: HttpRequest, params: dict, model: type[Model], model_admin: admin.ModelAdmin):
        period = params.pop(PERIOD_PARAMETER, None)
        self.period = period[-1] if isinstance(period, list) else period
        super().__init__(request, params, model, model_admin)
        if self.period is not None:
            self.used_parameters[PERIOD_PARAMETER] = self.period

    def expected_parameters(self) -> list[str]:
        return [self.parameter_name, PERIOD_PARAMETER]

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        key = self.value()
        if not key:
            return []
        label = drilldown_label(key)
        if self.period:
            label = _("%(figure)s, %(period)s") % {"figure": label, "period": self.period.replace("..", " .. ")}
        return [(key, label)]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        key = self.value()
        if not key:
            return queryset
        try:
            return drilldown_filter(queryset, key=key, period=self.period)
        except ValueError as exc:
            messages.error(request, str(exc))
            return queryset.none()
