"""Checks of limit settings read from the environment: a bad value stops start-up with a message naming it."""

from django.core.exceptions import ImproperlyConfigured

# DRF's throttles read the first letter of the period: s(ec), m(in), h(our), d(ay).
RATE_PERIODS = ("s", "m", "h", "d")


def bounded(name: str, value: int, *, low: int, high: int) -> int:
    if not low <= value <= high:
        raise ImproperlyConfigured(f"{name}={value} is outside {low}..{high}.")
    return value


def throttle_rate(name: str, value: str) -> str:
    """A DRF rate, "<requests>/<period>" with a period of s, m(in), h(our) or d(ay), e.g. "1200/min"."""
    count, _, period = value.partition("/")
    if not (count.isdigit() and int(count) > 0 and period[:1] in RATE_PERIODS):
        raise ImproperlyConfigured(f'{name}="{value}" is not a rate like "1200/min" (per s, min, hour or day).')
    return value
