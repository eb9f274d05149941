"""Dates, numbers and amounts as each language writes them (issue 16; docs/metrics.md keeps the figures' rules).

- Dates: Persian in the Solar Hijri calendar (jdatetime, "1405/09/10"); the others through the project's
  format modules (config/formats/<lang>/formats.py, SHORT_DATE_FORMAT): Hungarian "2026. 12. 01.", Arabic
  "1 ديسمبر 2026", English "1 Dec 2026" (a month name, so no one reads 12/01 as the 12th of January).
- Amounts through Babel, not Django's number formats: Babel carries CLDR's data per locale, which Django's
  formats do not have: the currency's symbol in that language (€, Ft, ریال) and its position and spacing
  (€1.00 / 1,00 EUR / € 1.00), the decimal and group marks of each numbering system; and it is already a
  pinned dependency. Django's formats stay for dates, where they also serve the admin.
- Digits: Persian and Arabic text may use the native digits (۱۲۳ / ١٢٣) or the Latin ones: a business's
  choice (core.BusinessSettings.digits). Native digits are a translate table over the formatted text (dates,
  numbers, amounts), with that numbering system's decimal and group marks for numbers and amounts.
"""

import datetime as dt
from decimal import Decimal

import jdatetime
from babel.numbers import format_currency, format_decimal
from django.core.cache import cache
from django.utils import formats, timezone, translation

DIGITS_LATIN, DIGITS_NATIVE = "latin", "native"
# The languages with digits of their own: their digits, and CLDR's numbering system (its decimal and group marks).
NATIVE_DIGITS = {"ar": "٠١٢٣٤٥٦٧٨٩", "fa": "۰۱۲۳۴۵۶۷۸۹"}
NUMBERING_SYSTEM = {"ar": "arab", "fa": "arabext"}
_TO_NATIVE = {lang: str.maketrans("0123456789", digits) for lang, digits in NATIVE_DIGITS.items()}
# core.models.BusinessSettings deletes it on save, so every process sees a manager's change at once.
BUSINESS_DIGITS_CACHE_KEY = "core:business-digits"
BUSINESS_DIGITS_CACHE_SECONDS = 300


def _language(language: str | None) -> str:
    return (language or translation.get_language() or "en").lower().replace("_", "-")


def _primary(language: str) -> str:
    return language.split("-")[0]


def business_digits() -> str:
    """The business's digits setting ("latin" or "native"), read once per cache period, not per date."""
    digits = cache.get(BUSINESS_DIGITS_CACHE_KEY)
    if digits is None:
        from core.models import BusinessSettings  # the models import this module's constants

        digits = BusinessSettings.objects.filter(pk=1).values_list("digits", flat=True).first() or DIGITS_LATIN
        cache.set(BUSINESS_DIGITS_CACHE_KEY, digits, BUSINESS_DIGITS_CACHE_SECONDS)
    return digits


def _native(language: str, digits: str | None) -> bool:
    """True when this text is to be written in the language's own digits (``digits`` overrides the setting)."""
    if _primary(language) not in NATIVE_DIGITS:
        return False
    return (digits or business_digits()) == DIGITS_NATIVE


def digits_localize(*, text: str, language: str | None = None, digits: str | None = None) -> str:
    """``text``'s digits in the language's own when the business writes them so (Latin otherwise)."""
    language = _language(language)
    return text.translate(_TO_NATIVE[_primary(language)]) if _native(language, digits) else text


def _as_date(value: dt.date | dt.datetime) -> dt.date:
    if isinstance(value, dt.datetime):
        return timezone.localtime(value).date() if timezone.is_aware(value) else value.date()
    return value


def date_local(*, value: dt.date | dt.datetime | None, language: str | None = None, digits: str | None = None,
               before_suffix: bool = False) -> str:
    """A date as the language writes it: Solar Hijri in Persian, the language's SHORT_DATE_FORMAT else.

    ``before_suffix``: the date is followed by a case ending ("2026. 12. 01-ig" in Hungarian), which takes the
    place of the date's closing full stop."""
    if value is None:
        return ""
    language = _language(language)
    day = _as_date(value)
    if _primary(language) == "fa":
        text = jdatetime.date.fromgregorian(date=day).strftime("%Y/%m/%d")
    else:
        with translation.override(language):
            text = formats.date_format(day, "SHORT_DATE_FORMAT")
    if before_suffix:
        text = text.rstrip(".")
    return digits_localize(text=text, language=language, digits=digits)


def date_gregorian(*, value: dt.date | dt.datetime | None) -> str:
    """The ISO date: the title of a Solar Hijri date for managers who plan in the Gregorian calendar."""
    return "" if value is None else _as_date(value).isoformat()


def calendar_differs(*, language: str | None = None) -> bool:
    """True when the language's dates are not Gregorian ones (Persian): pages then show the ISO date on hover."""
    return _primary(_language(language)) == "fa"


def _babel(language: str, digits: str | None) -> tuple[str, str]:
    """Babel's locale ("fa_IR") and numbering system for this language and digits setting."""
    numbering = NUMBERING_SYSTEM[_primary(language)] if _native(language, digits) else "latn"
    return translation.to_locale(language), numbering


def number_local(*, value: Decimal | float | int | None, language: str | None = None,
                 digits: str | None = None) -> str:
    """A number with the language's decimal and group marks and digits ("1 234,5" in Hungarian)."""
    if value is None or value == "":
        return ""
    language = _language(language)
    locale, numbering = _babel(language, digits)
    text = format_decimal(value, locale=locale, numbering_system=numbering)
    return digits_localize(text=text, language=language, digits=digits)


def money_local(*, amount: Decimal | float | int | None, currency: str, language: str | None = None,
                digits: str | None = None) -> str:
    """An amount with its currency as the language writes it (CLDR through Babel: symbol, separators, position)."""
    if amount is None or amount == "":
        return ""
    language = _language(language)
    locale, numbering = _babel(language, digits)
    text = format_currency(amount, currency, locale=locale, numbering_system=numbering)
    return digits_localize(text=text, language=language, digits=digits)
