"""Periods [S, E) in the business time zone: months, quarters, years and custom ranges alike."""

import datetime as dt
import zoneinfo
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError


@dataclass(frozen=True, order=True)
class Period:
    start: dt.date
    end: dt.date  # exclusive

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValidationError({"end": f"The period must end after it starts ({self.start} .. {self.end})."})

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

    def label(self) -> str:
        if self.is_month():
            return f"{self.start:%Y-%m}"
        return f"{self.start} .. {self.end - dt.timedelta(days=1)}"

    def __str__(self) -> str:
        return self.label()


def add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def month_of(day: dt.date) -> Period:
    first = day.replace(day=1)
    return Period(first, add_months(first, 1))


def months_between(start: dt.date, end: dt.date) -> list[Period]:
    """The calendar months from the one containing ``start`` up to the one before ``end``'s (if end is the
    1st) or containing it."""
    out, month = [], start.replace(day=1)
    while month < end:
        out.append(month_of(month))
        month = add_months(month, 1)
    return out


def parse_month(text: str) -> Period:
    try:
        return month_of(dt.datetime.strptime(text, "%Y-%m").date())
    except ValueError as exc:
        raise ValidationError({"month": f"'{text}' is not a month: use YYYY-MM."}) from exc


def parse_range(start: str, end: str) -> Period:
    errors = {}
    parsed = {}
    for name, text in (("start", start), ("end", end)):
        try:
            parsed[name] = dt.date.fromisoformat(text)
        except (TypeError, ValueError):
            errors[name] = f"'{text}' is not a date: use YYYY-MM-DD."
    if errors:
        raise ValidationError(errors)
    return Period(parsed["start"], parsed["end"])
