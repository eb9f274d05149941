"""Bounds that every entry point shares: the model, the API, CSV import, the admin and the database.

A value a person or another system enters is bounded here once, so that each entry point says the same
thing and no computed value (a due date, a coupon's expiry, a KPI period) can leave the range that
Python's ``datetime`` and PostgreSQL's ``timestamptz`` can hold.

- Business instants (an order, a contact, a consent, a complaint, a callback) lie between
  ``EARLIEST_BUSINESS_DATETIME`` (1970-01-01 UTC: no business here predates it) and now plus
  ``FUTURE_ALLOWANCE`` (a year: a dated cancellation or a callback may be ahead, nothing further).
  The database checks a fixed outer bound (``DB_LATEST_DATETIME``), because a CHECK constraint cannot
  depend on the clock; the application checks the moving one.
- Day counts a manager sets (offsets, validity, windows) are at most ``MAX_SETTING_DAYS`` (ten years),
  so adding them to any business instant stays far inside the range.
- UTC offsets are at most +-15:59, the most PostgreSQL accepts (and more than any real zone uses).
"""

import datetime as dt

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _

EARLIEST_BUSINESS_DATETIME = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
FUTURE_ALLOWANCE = dt.timedelta(days=366)
# The database's own backstop (CHECK constraints): fixed, as a constraint cannot read the clock.
DB_LATEST_DATETIME = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)
MAX_UTC_OFFSET = dt.timedelta(hours=15, minutes=59)

MAX_SETTING_DAYS = 3650
MAX_SETTING_HOURS = 24 * 31
MAX_SETTING_MINUTES = 60 * 24 * 31

EARLIEST_BUSINESS_YEAR = EARLIEST_BUSINESS_DATETIME.year


def latest_business_datetime(*, now: dt.datetime | None = None) -> dt.datetime:
    return (now or timezone.now()) + FUTURE_ALLOWANCE


def latest_business_year() -> int:
    return latest_business_datetime().year


def business_datetime_error(value: dt.datetime) -> str | None:
    """Why ``value`` is not an acceptable business instant, or None when it is."""
    offset = value.utcoffset()
    if offset is not None and abs(offset) > MAX_UTC_OFFSET:
        return _("The UTC offset %(offset)s is outside -15:59..+15:59.") % {"offset": _offset_text(offset)}
    if value.tzinfo is None:
        value = timezone.make_aware(value)
    try:
        utc = value.astimezone(dt.UTC)
    except (OverflowError, ValueError):
        return _("The date is outside 1970 to one year from now.")
    latest = latest_business_datetime()
    if utc < EARLIEST_BUSINESS_DATETIME:
        return _("The date must be on or after %(earliest)s; got %(value)s.") % {
            "earliest": f"{EARLIEST_BUSINESS_DATETIME:%Y-%m-%d}", "value": value.isoformat()}
    if utc > latest:
        return _("The date must be at most one year ahead (on or before %(latest)s); got %(value)s.") % {
            "latest": f"{latest:%Y-%m-%d}", "value": value.isoformat()}
    return None


def validate_business_datetime(value: dt.datetime | None) -> None:
    """Model and serializer validator: raise ValidationError when ``value`` is out of bounds."""
    if value is None:
        return
    error = business_datetime_error(value)
    if error:
        raise ValidationError(error, code="datetime_out_of_range")


def _offset_text(offset: dt.timedelta) -> str:
    sign = "-" if offset < dt.timedelta(0) else "+"
    minutes = int(abs(offset).total_seconds()) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def text_error(value: str) -> str | None:
    """Why a text cannot be stored (PostgreSQL text holds no NUL character), or None."""
    if "\x00" in value:
        return _("Contains a NUL character (\\x00), which cannot be stored.")
    return None
