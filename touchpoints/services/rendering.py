"""A touchpoint's message in the customer's language: subject, plain text, HTML and SMS text.

Templates live in templates/emails/<locale>/<name>.{subject.txt,txt,html,sms.txt}. The customer's locale
picks them ("ar-EG" tries ar-eg, then ar); anything missing falls back to LANGUAGE_CODE (English).
"""

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.template import Context, TemplateDoesNotExist
from django.template.loader import get_template
from django.utils import translation

from crm.models import Customer
from touchpoints.services.links import score_links, unsubscribe_url
from winback.models import Coupon

RTL_LANGUAGES = {"ar", "he", "fa", "ur"}
# Which survey question a template asks, answered with one-click score links.
SURVEY_OF_TEMPLATE = {"order_follow_up": "csat", "complaint_follow_up": "csat", "winback_miss_you": "nps"}


@dataclass(frozen=True)
class Rendered:
    locale: str
    subject: str
    text: str
    html: str
    sms: str


def locale_candidates(locale: str) -> list[str]:
    tag = (locale or "").lower().replace("_", "-")
    out = [tag, tag.split("-")[0], settings.LANGUAGE_CODE.lower()]
    return [x for i, x in enumerate(out) if x and x not in out[:i]]


def _pick_locale(name: str, locale: str) -> str:
    for candidate in locale_candidates(locale):
        try:
            get_template(f"emails/{candidate}/{name}.html")
            return candidate
        except TemplateDoesNotExist:
            continue
    raise TemplateDoesNotExist(f"emails/<locale>/{name}.html for {locale!r} or {settings.LANGUAGE_CODE!r}")


def touchpoint_context(*, customer: Customer, touchpoint_id: int, template: str, marketing: bool,
                       coupon: Coupon | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    survey = SURVEY_OF_TEMPLATE.get(template)
    return {
        "customer": customer,
        "first_name": (customer.name or "").split(" ")[0],
        "brand": settings.WINBACK_BRAND_NAME,
        "shop_url": settings.WINBACK_SHOP_URL,
        "coupon": coupon,
        "offer_text": coupon.offer.script if coupon and coupon.offer_id else "",
        "unsubscribe_url": unsubscribe_url(customer_id=customer.pk, touchpoint_id=touchpoint_id) if marketing else "",
        "csat_links": score_links(touchpoint_id=touchpoint_id, kind="csat") if survey == "csat" else [],
        "nps_links": score_links(touchpoint_id=touchpoint_id, kind="nps") if survey == "nps" else [],
        **(extra or {}),
    }


def touchpoint_render(*, template: str, locale: str, context: dict[str, Any]) -> Rendered:
    chosen = _pick_locale(template, locale)
    base = f"emails/{chosen}/{template}"
    ctx = {**context, "lang": chosen, "dir": "rtl" if chosen.split("-")[0] in RTL_LANGUAGES else "ltr"}

    def text(name: str) -> str:
        # Plain text is not HTML: no entity escaping ("Tom & Jerry" stays as it is).
        return get_template(name).template.render(_plain_context(ctx)).strip()

    # The message's whole language is the templates': gettext, dates and numbers too, whoever renders it (a
    # worker, or a manager's preview in another language). No mixed-language message.
    with translation.override(chosen):
        subject = " ".join(text(f"{base}.subject.txt").split())  # one line: a header cannot hold a newline
        return Rendered(
            locale=chosen, subject=subject, text=text(f"{base}.txt") + "\n",
            html=get_template(f"{base}.html").render(ctx), sms=text(f"{base}.sms.txt"),
        )


def _plain_context(ctx: dict[str, Any]):
    return Context(ctx, autoescape=False)
