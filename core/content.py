"""Text that managers write (offer names and scripts, reasons for leaving, cadence step texts) in each language.

API used by the desk, the KPI pages and the rendering of messages. The lookup and its fallback chain (the
language asked, its base language, the business default, then the text on the object itself) are filled in
by the content-translations work of issue 16; until then the object's own text is returned.
"""

from collections.abc import Iterable

from django.db.models import Model


def content_text(*, obj: Model, field: str, language: str) -> str:
    """``obj.<field>`` in ``language`` (e.g. an Offer's "script" for a fa-IR customer), with the fallback chain."""
    return getattr(obj, field)


def content_texts(*, objects: Iterable[Model], field: str, language: str) -> dict[int, str]:
    """The same for many objects of one model in one query: {pk: text} (e.g. every reason for leaving)."""
    return {obj.pk: getattr(obj, field) for obj in objects}
