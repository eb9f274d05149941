"""{% load metrics_text %}: the KPI pages' definitions in right-to-left languages.

A definition is a formula as much as a sentence: "L0 / CS", "(CE - CN) / CS", "mean(lapse date - acquired_at)".
Its symbols stay in Latin script in every language, and a formula read right to left is wrong ("CS / L0"), so
in Arabic and Persian each run of Latin-script notation is isolated as left-to-right (<bdi dir="ltr">).
"""

import re

from django import template
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language_bidi

register = template.Library()

# A run of notation: Latin letters, digits and the formula's operators and brackets, holding a Latin letter.
_NOTATION = re.compile(r"[A-Za-z0-9_()\[\]+\-*/=<>.,:%& ]*[A-Za-z][A-Za-z0-9_()\[\]+\-*/=<>.,:%& ]*")


@register.filter
def notation(text) -> SafeString:
    """``{{ definition|notation }}``: the text escaped, its Latin-script notation isolated in right-to-left."""
    text = "" if text is None else str(text)
    if not get_language_bidi():
        return escape(text)
    out, last = [], 0
    for match in _NOTATION.finditer(text):
        run = match.group()
        start = match.start() + len(run) - len(run.lstrip(" .,:"))
        end = match.end() - (len(run) - len(run.rstrip(" .,:")))
        if start >= end:
            continue
        out.append(escape(text[last:start]))
        out.append(format_html('<bdi dir="ltr">{}</bdi>', text[start:end]))
        last = end
    out.append(escape(text[last:]))
    return mark_safe("".join(out))  # noqa: S308 - every piece escaped above
