"""{% load crm_format %}: isolating data inside translated sentences on the customer pages."""

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

register = template.Library()


@register.filter
def bdi(value) -> SafeString:
    """``{% blocktranslate with days=n|bdi %}``: the datum in its own <bdi>, so "321.7" or "+36 30 123 4567"
    keeps its order inside an Arabic or Persian sentence."""
    return format_html("<bdi>{}</bdi>", value)
