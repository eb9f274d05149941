"""Text that managers write (offer names and scripts, reasons for leaving, cadence step texts) in each language.

API used by the desk, the KPI pages and the rendering of messages. Each translatable model has a table of
explicit translation rows beside it (winback.OfferTranslation, winback.LeaveReasonTranslation,
touchpoints.CadenceStepText): one row per (object, language), edited as an inline of the object in the admin.
The object's own text stays the text in the business's default language (settings.LANGUAGE_CODE).

Why explicit rows and not django-modeltranslation: modeltranslation rewrites ORM lookups by the active
language (``filter(name=...)`` reads ``name_<lang>``), which would silently change the meaning of the many
queries that filter by name, and it does not reach the raw SQL at all. With rows, ``Offer.name`` means one
thing whatever the request's language, and a missing translation is a missing row: visible in the admin
(content_missing_languages) and, when a message is sent, a fallback we can name (content_lookup).

The fallback chain for a language: the language asked ("fa-IR"), its base language ("fa"), the business
default (LANGUAGE_CODE: a row for it may override the own text), then the object's own text. An empty text
in a row counts as missing (a manager may translate an offer's name before its script).
"""

from collections.abc import Iterable
from dataclasses import dataclass

from django.apps import apps
from django.conf import settings
from django.db import models
from django.db.models import Model, Q

# Every language the product speaks may have a row, the default one too (it then overrides the own text).
CONTENT_LANGUAGE_CHOICES = list(settings.LANGUAGES)
CONTENT_LANGUAGE_CODES = [code for code, _name in settings.LANGUAGES]
CONTENT_LANGUAGE_MAX_LENGTH = 8

# model label -> (translation model label, its foreign key to the object, the fields it translates)
TRANSLATIONS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "winback.offer": ("winback.OfferTranslation", "offer", ("name", "script")),
    "winback.leavereason": ("winback.LeaveReasonTranslation", "reason", ("name",)),
    "touchpoints.cadencestep": ("touchpoints.CadenceStepText", "step", ("subject", "body", "sms")),
}


def content_language_constraint(model_name: str) -> models.CheckConstraint:
    """The database refuses a language the product does not speak (the form's choices do too)."""
    return models.CheckConstraint(condition=Q(language__in=CONTENT_LANGUAGE_CODES), name=f"{model_name}_language_known")


def language_base(locale: str) -> str:
    """The base language of a locale tag: "fa-IR" and "fa_IR" -> "fa" ("" for none)."""
    return (locale or "").lower().replace("_", "-").split("-")[0]


def content_language_chain(language: str) -> list[str]:
    """Where a text (or a message's template) in ``language`` is looked for, in order: "fa-IR" -> ["fa-ir", "fa",
    "en"]. The one chain of a customer's language: touchpoints' rendering uses it for templates too."""
    tag = (language or "").lower().replace("_", "-")
    out = [tag, language_base(tag), settings.LANGUAGE_CODE.lower()]
    return [x for i, x in enumerate(out) if x and x not in out[:i]]


@dataclass(frozen=True)
class ContentText:
    text: str
    language: str  # the row's language, or LANGUAGE_CODE for the object's own text
    fallback: bool  # not in the language asked (nor its base language, which a customer reads alike)


def _spec(model: type[Model]) -> tuple[type[Model], str, tuple[str, ...]]:
    label, fk, fields = TRANSLATIONS[model._meta.label_lower]
    return apps.get_model(label), fk, fields


def _own(obj: Model, field: str) -> str:
    return getattr(obj, field, "") or ""


def _pick(*, rows: dict[str, str], own: str, chain: list[str], asked: str) -> ContentText:
    for language in chain:
        if rows.get(language):
            return ContentText(text=rows[language], language=language, fallback=language not in asked)
    default = settings.LANGUAGE_CODE.lower()
    return ContentText(text=own, language=default, fallback=default not in asked)


def _asked(chain: list[str], language: str) -> list[str]:
    # A customer of "fa-IR" reads "fa" as their own language: only what is past the base counts as a fallback.
    tag = (language or "").lower().replace("_", "-")
    return [x for x in chain if x in (tag, tag.split("-")[0])]


def content_lookup(*, obj: Model, field: str, language: str) -> ContentText:
    """``obj.<field>`` in ``language`` with the fallback chain, and which language it came from.

    Uses ``obj.<related>`` when it was prefetched (no query), else one query."""
    model, fk, fields = _spec(type(obj))
    if field not in fields:
        raise ValueError(f"{type(obj).__name__}.{field} is not translated")
    chain = content_language_chain(language)
    related = model._meta.get_field(fk).remote_field.related_name
    cache = getattr(obj, "_prefetched_objects_cache", {})
    if related in cache:
        rows = {row.language: getattr(row, field) for row in cache[related] if row.language in chain}
    elif obj.pk is None:
        rows = {}
    else:
        rows = dict(model.objects.filter(**{fk: obj.pk}, language__in=chain).values_list("language", field))
    return _pick(rows=rows, own=_own(obj, field), chain=chain, asked=_asked(chain, language))


def content_text(*, obj: Model, field: str, language: str) -> str:
    """``obj.<field>`` in ``language`` (e.g. an Offer's "script" for a fa-IR customer), with the fallback chain."""
    return content_lookup(obj=obj, field=field, language=language).text


def content_texts(*, objects: Iterable[Model], field: str, language: str) -> dict[int, str]:
    """The same for many objects of one model in one query: {pk: text} (e.g. every reason for leaving)."""
    objects = [obj for obj in objects if obj.pk is not None]
    if not objects:
        return {}
    model, fk, fields = _spec(type(objects[0]))
    if field not in fields:
        raise ValueError(f"{type(objects[0]).__name__}.{field} is not translated")
    chain = content_language_chain(language)
    rows: dict[int, dict[str, str]] = {}
    for pk, row_language, text in model.objects.filter(
            **{f"{fk}_id__in": [obj.pk for obj in objects]}, language__in=chain).values_list(f"{fk}_id", "language", field):
        rows.setdefault(pk, {})[row_language] = text
    asked = _asked(chain, language)
    return {obj.pk: _pick(rows=rows.get(obj.pk, {}), own=_own(obj, field), chain=chain, asked=asked).text
            for obj in objects}


def content_missing_languages(*, obj: Model) -> list[str]:
    """The languages other than the default with no row for ``obj`` (or a row leaving a field empty), in
    settings order: what the admin marks as missing. Uses prefetched rows when there are."""
    model, fk, fields = _spec(type(obj))
    related = model._meta.get_field(fk).remote_field.related_name
    cache = getattr(obj, "_prefetched_objects_cache", {})
    rows = list(cache[related]) if related in cache else list(model.objects.filter(**{fk: obj.pk})) if obj.pk else []
    complete = {row.language for row in rows if all(getattr(row, f) for f in content_required_fields(obj=obj, fields=fields))}
    default = settings.LANGUAGE_CODE.lower()
    return [code for code in CONTENT_LANGUAGE_CODES if code != default and code not in complete]


def content_required_fields(*, obj: Model, fields: tuple[str, ...]) -> tuple[str, ...]:
    """The fields a row needs to count as a translation: those the object itself has text in (an offer
    without a script needs no translated script; a step's texts are whole messages, its own check)."""
    if obj._meta.label_lower == "touchpoints.cadencestep":
        return ()
    return tuple(f for f in fields if _own(obj, f))
