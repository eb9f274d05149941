"""Periods [S, E) in the business time zone: months, quarters, years and custom ranges alike."""

import datetime as dt
import zoneinfo
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from core.bounds import EARLIEST_BUSINESS_YEAR, latest_business_year


@dataclass(frozen=True, order=True)
class Period:
    start: dt.date
    end: dt.date  # exclusive

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValidationError({"end": _("The period must end after it starts (%(start)s .. %(end)s).")
                                          % {"start": self.start.isoformat(), "end": self.end.isoformat()}})

    def bounds(self) -> tuple[dt.datetime, dt.datetime]:
        """Local midnights in the business time zone, as aware instants."""
        zone = zoneinfo.ZoneInfo(settings.TIME_ZONE)
        return (dt.datetime.combine(self.start, dt.time(), tzinfo=zone), dt.datetime.combine(self.end, dt.time(), tzinfo=zone))

    def previous(self) -> "Period":
        """The period of equal length before: the previous month for a month, else the same number of days."""
        if self.is_month():
            return month_of(add_months(self.start, -1))
        length = self.end - self.start
        return Period(self.start - length, self.start)

    def is_month(self) -> bool:
        return self.start.day == 1 and add_months(self.start, 1) == self.end

    def is_quarter(self) -> bool:
        return self.start.day == 1 and self.start.month % 3 == 1 and add_months(self.start, 3) == self.end

    def is_year(self) -> bool:
        return self.start.day == 1 and self.start.month == 1 and add_months(self.start, 12) == self.end

    def label(self) -> str:
        if self.is_month():
            return f"{self.start:%Y-%m}"
        if self.is_quarter():
            return f"{self.start.year}-Q{(self.start.month - 1) // 3 + 1}"
        if self.is_year():
            return f"{self.start.year}"
        return f"{self.start} .. {self.end - dt.timedelta(days=1)}"

    def __str__(self) -> str:
        return self.label()


def add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def month_of(day: dt.date) -> Period:
    first = day.replace(day=1)
    return Period(first, add_months(first, 1))


def quarter_of(day: dt.date) -> Period:
    first = dt.date(day.year, (day.month - 1) // 3 * 3 + 1, 1)
    return Period(first, add_months(first, 3))


def year_of(day: dt.date) -> Period:
    return Period(dt.date(day.year, 1, 1), dt.date(day.year + 1, 1, 1))


def period_presets(*, today: dt.date) -> list[tuple[str, str, Period]]:
    """The periods a manager picks most, beside the month picker: (key, label, period), the current ones so
    far (to today's end) included as whole calendar periods."""
    this_quarter, this_year = quarter_of(today), year_of(today)
    return [
        ("this_quarter", _("This quarter"), this_quarter),
        ("last_quarter", _("Last quarter"), quarter_of(add_months(this_quarter.start, -3))),
        ("this_year", _("This year"), this_year),
        ("last_year", _("Last year"), year_of(dt.date(today.year - 1, 1, 1))),
    ]


def months_between(start: dt.date, end: dt.date) -> list[Period]:
    """The calendar months from the one containing ``start`` up to the one before ``end``'s (if end is the
    1st) or containing it."""
    out, month = [], start.replace(day=1)
    while month < end:
        out.append(month_of(month))
        month = add_months(month, 1)
    return out


def month_count(period: Period) -> int:
    """len(months_between(period.start, period.end)), without building them (a range is checked first)."""
    first = period.start.year * 12 + period.start.month
    last = period.end.year * 12 + period.end.month - (1 if period.end.day == 1 else 0)
    return last - first + 1


def parse_month(text: str, *, field: str = "month") -> Period:
    try:
        month = dt.datetime.strptime(text, "%Y-%m").date()
    except (TypeError, ValueError) as exc:
        # Translators: YYYY-MM is the form the field takes (e.g. 2025-03), not to be translated.
        raise ValidationError({field: _("'%(text)s' is not a month: use YYYY-MM.") % {"text": text}}) from exc
    error = _outside_business_years(month, text=text)
    if error:
        raise ValidationError({field: error})
    return month_of(month)


def parse_range(start: str, end: str, *, max_months: int | None = None) -> Period:
    """[start, end) from YYYY-MM-DD texts, inside the business years and, if given, at most ``max_months``
    calendar months long (so that what a period costs to compute is bounded before any is computed)."""
    errors = {}
    parsed = {}
    for name, text in (("start", start), ("end", end)):
        try:
            parsed[name] = dt.date.fromisoformat(text)
        except (TypeError, ValueError):
            # Translators: YYYY-MM-DD is the form the field takes (e.g. 2025-03-01), not to be translated.
            errors[name] = _("'%(text)s' is not a date: use YYYY-MM-DD.") % {"text": text}
            continue
        error = _outside_business_years(parsed[name], text=text, is_end=name == "end")
        if error:
            errors[name] = error
    if errors:
        raise ValidationError(errors)
    period = Period(parsed["start"], parsed["end"])
    if max_months is not None and month_count(period) > max_months:
        raise ValidationError({"end": _("At most %(months)d months at a time; this range touches %(count)d.")
                                      % {"months": max_months, "count": month_count(period)}})
    return period


def _outside_business_years(day: dt.date, *, text: str, is_end: bool = False) -> str | None:
    """Why ``day`` cannot bound a KPI period (None when it can): the data lies in the business years of
    core.bounds; outside them a period only costs time and, near year 1 or 9999, overflows the calendar."""
    first, last = EARLIEST_BUSINESS_YEAR, latest_business_year()
    after = dt.date(last + 1, 1, 1)  # an exclusive end may fall on it, a start may not
    if day < dt.date(first, 1, 1) or day > after or (day == after and not is_end):
        return _("'%(text)s' is outside the years %(first)d to %(last)d.") % {"text": text, "first": first, "last": last}
    return None
