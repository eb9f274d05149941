"""{% load locale_format %}: dates, numbers and amounts in the active language (core/locale_format.py does the work)."""

from django import template
from django.utils.html import format_html

from core.locale_format import calendar_differs, date_gregorian, date_local, money_local, number_local

register = template.Library()


@register.filter
def local_date(value, arg: str = "") -> str:
    """Plain text (emails, SMS, inside sentences): ``{{ coupon.expires_at|local_date }}``;
    ``{{ day|local_date:"suffix" }}-ig`` when a case ending follows (Hungarian drops the closing full stop)."""
    return date_local(value=value, before_suffix=arg == "suffix")


@register.simple_tag
def date_html(value) -> str:
    """For pages: a <time> element, the Gregorian date on hover when the calendar is another one."""
    if value is None:
        return ""
    text, iso = date_local(value=value), date_gregorian(value=value)
    if not calendar_differs():
        return format_html('<time datetime="{}">{}</time>', iso, text)
    return format_html('<time datetime="{}" title="{}">{}</time>', iso, iso, text)


@register.filter
def local_number(value) -> str:
    """``{{ years|local_number }}``: the language's marks, and its own digits when the business uses them."""
    return number_local(value=value)


@register.filter
def money(amount, currency: str = "EUR") -> str:
    """``{{ order.amount|money:order.currency }}``."""
    return money_local(amount=amount, currency=currency or "EUR")
