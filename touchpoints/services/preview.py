"""A step's message as one customer (or a made-up sample customer) would get it, without sending anything
to them and without touching the outbox: the admin's preview and the manager's test send both use it.

It goes through the product's own rendering (rendering.py), so what a manager sees is what a customer
would get: their language, their first name, their latest order. Two things are never real here, on
purpose: the coupon (a sample code: issuing one would consume a code and count in the coupon KPIs) and the
links (signed for customer 0 and touchpoint 0, which do not exist, so a click in a preview or a test email
can neither unsubscribe the customer nor answer their survey).
"""

import datetime as dt
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import get_language_info
from django.utils.translation import gettext as _

from crm.models import Customer, Order
from touchpoints.models import CadenceStep
from touchpoints.services.links import unsubscribe_url
from touchpoints.services.rendering import Rendered, touchpoint_context, touchpoint_render
from winback.models import Coupon, Offer
from winback.services.queue import coupon_expires_at

SAMPLE_NAMES = {"en": "Sample Customer", "ar": "سارة أحمد"}
# Neither exists (ids start at 1): links built for them are well formed and lead nowhere.
NO_CUSTOMER_ID = 0
NO_TOUCHPOINT_ID = 0
SAMPLE_EXTRA = {"milestone": 10, "years": 3}


@dataclass(frozen=True)
class StepPreview:
    rendered: Rendered
    customer: Customer  # the chosen customer, or the unsaved sample
    sample: bool
    warning: str  # for the manager, or ""


def sample_customer(*, locale: str) -> Customer:
    return Customer(pk=NO_CUSTOMER_ID, name=SAMPLE_NAMES.get(locale, SAMPLE_NAMES["en"]),
                    email="sample@example.com", locale=locale)


def cadence_step_preview(*, step: CadenceStep, customer: Customer | None, locale: str = "en",
                         now: dt.datetime | None = None) -> StepPreview:
    """Render ``step`` for ``customer`` in their own locale, or for a sample customer in ``locale``."""
    if not step.template:
        raise ValueError("a call step has no message to render")
    now = now or timezone.now()
    sample = customer is None
    who = sample_customer(locale=locale) if customer is None else customer
    coupon, warning = None, ""
    if step.offer_id:
        coupon = Coupon(code=f"{step.offer.code_prefix}-SAMPLE42", offer=step.offer)
        try:
            coupon.expires_at = coupon_expires_at(offer=step.offer, now=now)
        except ValidationError as exc:  # an old offer out of bounds: the message shows without a date
            warning = " ".join(exc.messages)
    context = touchpoint_context(customer=who, touchpoint_id=NO_TOUCHPOINT_ID, template=step.template,
                                 marketing=step.cadence.marketing, coupon=coupon, extra=_extra(who, sample=sample, now=now))
    if context["unsubscribe_url"]:
        context["unsubscribe_url"] = unsubscribe_url(customer_id=NO_CUSTOMER_ID, touchpoint_id=NO_TOUCHPOINT_ID)
    rendered = touchpoint_render(template=step.template, locale=who.locale, context=context, step=step)
    warning = " ".join(x for x in (warning, *content_fallback_notes(rendered=rendered, offer=step.offer)) if x)
    return StepPreview(rendered=rendered, customer=who, sample=sample, warning=warning)


def content_fallback_notes(*, rendered: Rendered, offer: Offer | None) -> list[str]:
    """For the manager, in their language: each manager-written text the message shows in another language
    than its own, because its translation is missing (a real send logs the same)."""
    notes = []
    for use in rendered.fallbacks:
        values = {"offer": offer.name if offer else use.object_id, "language": _language_name(use.asked),
                  "used": _language_name(use.used)}
        if use.what == "offer name":
            # Translators: a warning on a message's preview; the languages are names ("Persian", "English").
            notes.append(_("The offer “%(offer)s” has no name in this language (%(language)s), so this message shows "
                           "its name in the fallback language: %(used)s.") % values)
        else:
            # Translators: as above, for the offer's script (what the agent says and the message shows).
            notes.append(_("The offer “%(offer)s” has no script in this language (%(language)s), so this message shows "
                           "its script in the fallback language: %(used)s.") % values)
    return notes


def _language_name(code: str) -> str:
    try:
        return get_language_info(code.split("-")[0])["name_translated"]
    except KeyError:
        return code


def _extra(customer: Customer, *, sample: bool, now: dt.datetime) -> dict:
    if sample:
        return dict(SAMPLE_EXTRA)
    extra = dict(SAMPLE_EXTRA)
    # An order message shows the order it follows: for a real customer, their latest one.
    extra["order"] = Order.objects.filter(customer=customer).order_by("-ordered_at", "-id").first()
    if customer.acquired_at is not None:
        extra["years"] = max(1, timezone.localdate(now).year - timezone.localtime(customer.acquired_at).year)
    return extra
