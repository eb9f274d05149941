"""{% load locale_format %}: dates and amounts in the active language (core/locale_format.py does the work)."""

from django import template
from django.utils.html import format_html

from core.locale_format import date_gregorian, date_local, money_local

register = template.Library()


@register.filter
def local_date(value) -> str:
    """Plain text (emails, SMS, inside sentences): ``{{ coupon.expires_at|local_date }}``."""
    return date_local(value=value)


@register.simple_tag
def date_html(value) -> str:
    """For pages: a <time> element, the Gregorian date on hover when the calendar is another one."""
    if value is None:
        return ""
    text, iso = date_local(value=value), date_gregorian(value=value)
    if text == iso:
        return format_html('<time datetime="{}">{}</time>', iso, text)
    return format_html('<time datetime="{}" title="{}">{}</time>', iso, iso, text)


@register.filter
def money(amount, currency: str = "EUR") -> str:
    """``{{ order.amount|money:currency }}``."""
    return money_local(amount=amount, currency=currency or "EUR")
