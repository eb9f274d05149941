"""Field validators shared by models, the API and CSV import, so every entry point says the same thing."""

import re
import zoneinfo
from functools import lru_cache

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext
from phonenumbers import timezone as phone_timezone

LOCALE_RE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
CURRENCY_RE = re.compile(r"^[A-Z]{3}$")


@lru_cache(maxsize=1)
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def phone_normalize(value: str) -> str:
    """Return the number in E.164, or raise ValidationError saying why it is not a valid number."""
    value = (value or "").strip()
    if not value:
        return ""
    try:
        number = phonenumbers.parse(value, settings.PHONE_DEFAULT_REGION)
    except phonenumbers.NumberParseException as exc:
        if settings.PHONE_DEFAULT_REGION:
            message = gettext("'%(value)s' is not a phone number: %(why)s.")
        else:
            message = gettext("'%(value)s' is not a phone number: %(why)s (write it with its +country code).")
        # The library's reason stays English: it is a detail for whoever reads the number closely.
        raise ValidationError(message % {"value": value, "why": exc._msg}, code="invalid_phone")
    if not phonenumbers.is_valid_number(number):
        raise ValidationError(gettext("'%(value)s' is not a valid phone number.") % {"value": value},
                              code="invalid_phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_time_zones(e164: str) -> list[str]:
    """Every IANA zone the number may be in (one for most numbers, several for large countries)."""
    if not e164:
        return []
    zones = phone_timezone.time_zones_for_number(phonenumbers.parse(e164, None))
    return [z for z in zones if z in _time_zones()]


def validate_time_zone(value: str) -> None:
    if value and value not in _time_zones():
        raise ValidationError(gettext("'%(value)s' is not an IANA time zone (e.g. Europe/Paris).") % {"value": value},
                              code="invalid_tz")


def validate_locale(value: str) -> None:
    if value and not LOCALE_RE.match(value):
        raise ValidationError(gettext("'%(value)s' is not a language tag (e.g. en, ar, pt-BR).") % {"value": value},
                              code="invalid_locale")


def validate_currency(value: str) -> None:
    if not CURRENCY_RE.match(value or ""):
        raise ValidationError(gettext("'%(value)s' is not a three-letter ISO 4217 currency code.") % {"value": value},
                              code="invalid_currency")


FEEDBACK_RANGES = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}


def validate_feedback_score(kind: str, score: int | None) -> None:
    if kind not in FEEDBACK_RANGES:
        raise ValidationError({"kind": gettext("'%(kind)s' is not one of nps, csat, ces.") % {"kind": kind}})
    low, high = FEEDBACK_RANGES[kind]
    if score is None or not (low <= score <= high):
        raise ValidationError({"score": gettext("A %(kind)s score must be between %(low)s and %(high)s; got %(score)s.")
                               % {"kind": kind, "low": low, "high": high, "score": score}})


def call_zones_key(*, timezone: str, phone: str) -> str:
    """The zones a customer may be in, as stored in Customer.call_zones: their own zone if known, else
    every zone their phone number may be in (sorted, comma-separated), else ""."""
    return timezone or ",".join(sorted(phone_time_zones(phone)))
