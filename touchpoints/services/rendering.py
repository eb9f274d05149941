"""A touchpoint's message in the customer's language: subject, plain text, HTML and SMS text.

Templates live in templates/emails/<locale>/<name>.{subject.txt,txt,html,sms.txt}. The customer's locale
picks them ("ar-EG" tries ar-eg, then ar); anything missing falls back to LANGUAGE_CODE (English).

A manager may write a step's message in a language (touchpoints.CadenceStepText): down the same chain, the
first language with either a complete step text or a template wins, and a step text there replaces the file
template. The product's layout still wraps it (base.html: the brand and unsubscribe footer; the coupon box;
the survey links), so a manager's text cannot drop what the law or the KPIs need.

The offer's name and script come from core/content.py in the message's language (not the customer's raw
locale: an English message for a customer whose language has no templates shows the English script). When
they fall back to another language the render says so (Rendered.content), the log line names the touchpoint
and the preview shows it to the manager.
"""

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import prefetch_related_objects
from django.template import Context, TemplateDoesNotExist, engines
from django.template.loader import get_template
from django.utils import translation
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.utils.translation import gettext, pgettext

from core.content import content_language_chain, content_lookup, language_base
from crm.models import Customer
from touchpoints.models import CadenceStep, CadenceStepText
from touchpoints.services.links import score_links, unsubscribe_url
from winback.models import Coupon

log = logging.getLogger(__name__)
RTL_LANGUAGES = {"ar", "he", "fa", "ur"}
RLM = "\u200f"
# Which survey question a template asks, answered with one-click score links.
SURVEY_OF_TEMPLATE = {"order_follow_up": "csat", "complaint_follow_up": "csat", "winback_miss_you": "nps"}
# The placeholders a step text may use ({first_name}...); anything else in braces stays as written.
PLACEHOLDER = re.compile(r"\{(first_name|brand|offer|code|shop_url)\}")
# A step text inside the product's layout; the names of the language's own parts are variables.
_STEP_HTML = ("{% extends base_html %}{% block content %}{{ body_html }}{% include coupon_html %}"
              "{% if survey_links %}{% include scores_html with links=survey_links low=low high=high size=size %}"
              "{% endif %}{% endblock %}")
_STEP_TEXT = ("{% extends base_txt %}{% block content %}{{ body }}\n\n{% if coupon %}{% include coupon_txt %}\n{% endif %}"
              "{% if survey_links %}{% include scores_txt with links=survey_links low=low high=high %}\n{% endif %}"
              "{% endblock %}")


@dataclass(frozen=True)
class ContentUse:
    """One manager-written text in the message: which language it was asked in and which it came in."""

    what: str  # "offer name", "offer script"
    object_id: int
    asked: str
    used: str
    fallback: bool


@dataclass(frozen=True)
class Rendered:
    locale: str
    subject: str
    text: str
    html: str
    sms: str
    source: str = "template"  # or "step text": a manager's text in this language replaced the file template
    content: tuple[ContentUse, ...] = field(default=())

    @property
    def fallbacks(self) -> tuple[ContentUse, ...]:
        return tuple(use for use in self.content if use.fallback)


def locale_candidates(locale: str) -> list[str]:
    """The templates' chain is the manager-written texts' chain (core/content.py)."""
    return content_language_chain(locale)


def _has_template(name: str, candidate: str) -> bool:
    try:
        get_template(f"emails/{candidate}/{name}.html")
    except TemplateDoesNotExist:
        return False
    return True


def _pick_locale(name: str, locale: str) -> str:
    for candidate in locale_candidates(locale):
        if _has_template(name, candidate):
            return candidate
    raise TemplateDoesNotExist(f"emails/<locale>/{name}.html for {locale!r} or {settings.LANGUAGE_CODE!r}")


def _pick(name: str, locale: str, step: CadenceStep | None) -> tuple[str, CadenceStepText | None]:
    """The message's language and the step text to use in it, if any (else the file template)."""
    candidates = locale_candidates(locale)
    texts = step_texts(step=step, languages=candidates) if step is not None else {}
    for candidate in candidates:
        text = texts.get(candidate)
        if text is not None and text.is_complete_for(step.channel):
            return candidate, text
        if _has_template(name, candidate):
            return candidate, None
    raise TemplateDoesNotExist(f"emails/<locale>/{name}.html for {locale!r} or {settings.LANGUAGE_CODE!r}")


def step_texts(*, step: CadenceStep, languages: list[str]) -> dict[str, CadenceStepText]:
    """The step's texts in these languages: prefetched ``step.texts`` when there are, else one query."""
    if step.pk is None:
        return {}
    cache = getattr(step, "_prefetched_objects_cache", {})
    rows = cache["texts"] if "texts" in cache else step.texts.filter(language__in=languages)
    return {row.language: row for row in rows if row.language in languages}


# Languages whose names put the family name first and whose letters greet with the whole name ("Kedves Kovács
# Anna!"): the first word would be the family name.
WHOLE_NAME_GREETING = ("hu",)


def greeting_name(*, name: str, locale: str) -> str:
    """The name a message greets the customer with: the given name, or the whole name where that is the custom."""
    name = " ".join((name or "").split())
    if language_base(locale) in WHOLE_NAME_GREETING:
        return name
    return name.split(" ")[0]


def touchpoint_context(*, customer: Customer, touchpoint_id: int, template: str, marketing: bool,
                       coupon: Coupon | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    survey = SURVEY_OF_TEMPLATE.get(template)
    return {
        "customer": customer,
        "touchpoint_id": touchpoint_id,
        "first_name": greeting_name(name=customer.name, locale=customer.locale or settings.LANGUAGE_CODE),
        "brand": settings.WINBACK_BRAND_NAME,
        "shop_url": settings.WINBACK_SHOP_URL,
        "coupon": coupon,
        # The offer's own text; touchpoint_render puts it in the message's language.
        "offer_name": coupon.offer.name if coupon and coupon.offer_id else "",
        "offer_text": coupon.offer.script if coupon and coupon.offer_id else "",
        "survey": survey,
        "unsubscribe_url": unsubscribe_url(customer_id=customer.pk, touchpoint_id=touchpoint_id) if marketing else "",
        "csat_links": score_links(touchpoint_id=touchpoint_id, kind="csat") if survey == "csat" else [],
        "nps_links": score_links(touchpoint_id=touchpoint_id, kind="nps") if survey == "nps" else [],
        **(extra or {}),
    }


def _offer_content(ctx: dict[str, Any], language: str) -> tuple[ContentUse, ...]:
    coupon = ctx.get("coupon")
    if coupon is None or not coupon.offer_id:
        return ()
    if coupon.offer.pk is not None:
        prefetch_related_objects([coupon.offer], "translations")  # one query for the name and the script
    uses = []
    for what, name, key in (("offer name", "name", "offer_name"), ("offer script", "script", "offer_text")):
        found = content_lookup(obj=coupon.offer, field=name, language=language)
        ctx[key] = found.text
        uses.append(ContentUse(what=what, object_id=coupon.offer_id, asked=language, used=found.language,
                               fallback=found.fallback))
    return tuple(uses)


def touchpoint_render(*, template: str, locale: str, context: dict[str, Any], step: CadenceStep | None = None) -> Rendered:
    """The message for ``locale``: ``step``'s own text in that language when a manager wrote one, else the file
    template, with the offer's name and script in the message's language."""
    chosen, step_text = _pick(template, locale, step)
    ctx = {**context, "lang": chosen, "dir": "rtl" if chosen.split("-")[0] in RTL_LANGUAGES else "ltr"}
    content = _offer_content(ctx, chosen)
    fallbacks = [use for use in content if use.fallback]
    if fallbacks and ctx.get("touchpoint_id"):
        # The one place a manager's missing translation shows for a real send: which text went in which language.
        log.info("touchpoint %s in %s: %s", ctx["touchpoint_id"], chosen, "; ".join(
            f"{use.what} of offer {use.object_id} has no {use.asked} text, used {use.used}" for use in fallbacks))
    # The message's whole language is the templates': gettext, dates and numbers too, whoever renders it (a
    # worker, or a manager's preview in another language). No mixed-language message.
    with translation.override(chosen):
        if step_text is not None:
            return _render_step_text(step_text, chosen, ctx, content)
        base = f"emails/{chosen}/{template}"

        def text(name: str) -> str:
            # Plain text is not HTML: no entity escaping ("Tom & Jerry" stays as it is).
            return get_template(name).template.render(_plain_context(ctx)).strip()

        subject = " ".join(text(f"{base}.subject.txt").split())  # one line: a header cannot hold a newline
        return Rendered(
            locale=chosen, subject=subject, text=text(f"{base}.txt") + "\n",
            html=get_template(f"{base}.html").render(ctx), sms=text(f"{base}.sms.txt"), content=content,
        )


def _fill(text: str, ctx: dict[str, Any]) -> str:
    coupon = ctx.get("coupon")
    values = {"first_name": ctx.get("first_name") or "", "brand": ctx.get("brand") or "", "offer": ctx.get("offer_text") or "",
              "code": coupon.code if coupon else "", "shop_url": ctx.get("shop_url") or ""}
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def _paragraphs_html(text: str) -> str:
    # The manager's text is text, not markup: escaped, an empty line a new paragraph, a line break a <br>.
    blocks = [b.strip() for b in re.split(r"\n\s*\n", text.replace("\r\n", "\n")) if b.strip()]
    return mark_safe("".join('<p style="margin:0 0 16px 0;">' + escape(b).replace("\n", "<br>") + "</p>" for b in blocks))


def _scale(survey: str | None) -> dict[str, Any]:
    # Translators: the two ends of a 0-10 score scale under a question in an email ("How likely are you to...").
    if survey == "nps":
        return {"low": pgettext("survey scale", "Not likely"), "high": pgettext("survey scale", "Very likely"), "size": 32}
    # Translators: the two ends of a 1-5 satisfaction scale under a question in an email.
    return {"low": pgettext("survey scale", "Very unhappy"), "high": pgettext("survey scale", "Very happy"), "size": 40}


def _render_step_text(row: CadenceStepText, chosen: str, ctx: dict[str, Any], content: tuple[ContentUse, ...]) -> Rendered:
    engine = engines["django"]
    survey = ctx.get("survey")
    body = _fill(row.body, ctx).strip()
    parts = {
        "base_html": f"emails/{chosen}/base.html", "base_txt": f"emails/{chosen}/base.txt",
        "coupon_html": f"emails/{chosen}/_coupon.html", "coupon_txt": f"emails/{chosen}/_coupon.txt",
        "scores_html": f"emails/{chosen}/_scores.html", "scores_txt": f"emails/{chosen}/_scores.txt",
        "survey_links": ctx.get(f"{survey}_links") if survey else [], **_scale(survey),
    }
    html_ctx = {**ctx, **parts, "body_html": _paragraphs_html(body)}
    text_ctx = {**ctx, **parts, "body": body}
    sms = " ".join(_fill(row.sms, ctx).split())
    if sms and ctx.get("unsubscribe_url"):
        # Translators: appended to an SMS a manager wrote; the link stops marketing messages.
        sms = f"{sms} {gettext('Stop: %(url)s') % {'url': ctx['unsubscribe_url']}}"
    if sms and ctx["dir"] == "rtl":
        sms = RLM + sms  # as the language's own SMS templates: right to left even when it opens with a Latin name
    return Rendered(
        locale=chosen, subject=" ".join(_fill(row.subject, ctx).split()),
        text=engine.from_string(_STEP_TEXT).template.render(_plain_context(text_ctx)).strip() + "\n",
        html=engine.from_string(_STEP_HTML).render(html_ctx), sms=sms, source="step text", content=content,
    )


def _plain_context(ctx: dict[str, Any]):
    return Context(ctx, autoescape=False)
