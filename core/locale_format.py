"""Dates, numbers and amounts as each language writes them (issue 16; docs/metrics.md keeps the figures' rules).

First version (the API others build on): Solar Hijri dates for Persian (jdatetime), Hungarian "2026. 12. 01.",
Django's own formats for the others; amounts through Babel's CLDR data. Native digits and the per-business
setting come with core.BusinessSettings.
"""

import datetime as dt
from decimal import Decimal

import jdatetime
from babel.numbers import format_currency
from django.utils import formats, timezone, translation


def _as_date(value: dt.date | dt.datetime) -> dt.date:
    if isinstance(value, dt.datetime):
        return timezone.localtime(value).date() if timezone.is_aware(value) else value.date()
    return value


def date_local(*, value: dt.date | dt.datetime | None, language: str | None = None) -> str:
    """A date as the language writes it: Solar Hijri in Persian, the active language's SHORT_DATE_FORMAT else."""
    if value is None:
        return ""
    language = language or translation.get_language() or "en"
    day = _as_date(value)
    if language.startswith("fa"):
        return jdatetime.date.fromgregorian(date=day).strftime("%Y/%m/%d")
    with translation.override(language):
        return formats.date_format(day, "SHORT_DATE_FORMAT")


def date_gregorian(*, value: dt.date | dt.datetime | None) -> str:
    """The ISO date: the title of a Solar Hijri date for managers who plan in the Gregorian calendar."""
    return "" if value is None else _as_date(value).isoformat()


def money_local(*, amount: Decimal | float | int | None, currency: str, language: str | None = None) -> str:
    """An amount with its currency as the language writes it (CLDR through Babel: symbol, separators, position)."""
    if amount is None:
        return ""
    language = (language or translation.get_language() or "en").replace("-", "_")
    return format_currency(amount, currency, locale=language)
