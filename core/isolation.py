"""Data inside translated sentences, isolated for right-to-left pages (issue 16).

A sentence is translated whole (one msgid with %(name)s placeholders); each datum put into it (a name, a code,
an amount, a date, a person's own words) sits in its own <bdi>, so "BACK-7F2K", "€12.50" or a Latin name keeps
its order inside an Arabic or Persian sentence, and an Arabic name inside an English one. The sentence's own
text and the data are escaped; a value that is HTML already (a label, a list of isolated data) goes in as it is.
"""

import re
from typing import Any

from django.utils.html import conditional_escape, format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext

PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def bdi(value: Any) -> SafeString:
    return format_html("<bdi>{}</bdi>", value)


def label(text: Any) -> SafeString:
    """One of our own labels (a choice, a field's name): already in the page's language, so not isolated."""
    return conditional_escape(str(text))


def sentence_isolated(template: str, **data: Any) -> SafeString:
    """``template`` (already through gettext) with its %(name)s placeholders filled by isolated data."""
    escaped = conditional_escape(template).replace("{", "{{").replace("}", "}}")
    return format_html(PLACEHOLDER.sub(r"{\1}", escaped), **{
        key: value if isinstance(value, SafeString) else bdi(value) for key, value in data.items()})


def list_isolated(items: list[Any]) -> SafeString:
    # Translators: the separator between the items of a list inside one line of text (Arabic "؛ ").
    return format_html_join(gettext("; "), "{}", ((i if isinstance(i, SafeString) else bdi(i),) for i in items))
