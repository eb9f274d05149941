"""Every default cadence step's message in the four languages (issue 16): subject, HTML, plain text and SMS in
the customer's language, with the dates (Solar Hijri in Persian), the amounts and the offer text of that
language, the right-to-left mark at the start of Arabic and Persian plain text and SMS, and the one-click
unsubscribe headers on the email that is built and sent.

The expected dates and amounts are written by hand: 1 December 2026 is 10 Azar 1405, 31 December 2026 is
10 Dey 1405."""

import datetime as dt
import html as html_lib
import re
from decimal import Decimal

import pytest
from django.core import mail

from core.content import content_text
from crm.models import Customer
from tests.factories import BusinessSettingsFactory, CouponFactory, OrderFactory
from tests.touchpoints.conftest import make_customer
from touchpoints.defaults import CADENCES
from touchpoints.models import CadenceStep, Touchpoint
from touchpoints.services.rendering import Rendered, touchpoint_context, touchpoint_render
from touchpoints.services.sending import touchpoint_send
from winback.models import Offer

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)  # a Tuesday noon: outside quiet hours
ORDERED_AT = dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)
EXPIRES_AT = dt.datetime(2026, 12, 31, 12, 0, tzinfo=dt.UTC)  # NOW + the offer's 30 days
RLM, LRM, NBSP = "\u200f", "\u200e", "\xa0"
BRAND = "Acme"

# (cadence name, position, template) of every default email step.
DEFAULT_STEPS = [(name, position, template)
                 for name, _trigger, _marketing, _extra, steps in CADENCES
                 for position, (_d, _h, channel, template, _prefix) in enumerate(steps, start=1) if channel == "email"]
STATUS_OF_TRIGGER = {"at_risk": "at_risk", "lapsed": "lapsed", "checkin": "active"}

# The customer's locale as a shop records it (a region too), and a name written in that language.
CUSTOMERS = {"en": ("en-GB", "Amina Haddad"), "ar": ("ar-EG", "سارة أحمد"), "fa": ("fa-IR", "مریم رضایی"),
             "hu": ("hu-HU", "Kovács Anna")}
ORDER_DATE = {"en": "1 Dec 2026", "ar": "1 ديسمبر 2026", "fa": "1405/09/10", "hu": "2026. 12. 01."}
# Hungarian writes "2026. 12. 31." alone and "2026. 12. 31-ig" with a case ending: the common part.
EXPIRY_DATE = {"en": "31 Dec 2026", "ar": "31 ديسمبر 2026", "fa": "1405/10/10", "hu": "2026. 12. 31"}
AMOUNT = {"en": "€1,234.50", "ar": f"{RLM}1,234.50{NBSP}€", "fa": f"{LRM}€{NBSP}1,234.50",
          "hu": f"1{NBSP}234,50{NBSP}EUR"}
NATIVE = {
    "ar": {"order_date": "١ ديسمبر ٢٠٢٦", "expiry": "٣١ ديسمبر ٢٠٢٦", "amount": f"{RLM}١٬٢٣٤٫٥٠{NBSP}€"},
    "fa": {"order_date": "۱۴۰۵/۰۹/۱۰", "expiry": "۱۴۰۵/۱۰/۱۰", "amount": f"{LRM}€{NBSP}۱٬۲۳۴٫۵۰"},
}
# Words of the English templates that no Hungarian message has (whole words).
ENGLISH_WORDS = {"the", "you", "your", "and", "with", "for", "our", "we", "hi", "hello", "thank", "thanks", "order",
                 "code", "valid", "until", "stop", "unsubscribe", "regards", "team", "shop", "visit", "miss"}
ARABIC_LETTER = re.compile(r"[\u0600-\u06ff]")


@pytest.fixture(autouse=True)
def _business(settings):
    settings.WINBACK_BRAND_NAME = BRAND
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    BusinessSettingsFactory()


def _business_digits(digits: str) -> None:
    row = BusinessSettingsFactory()
    row.digits = digits
    row.save()


def _step(cadence_name: str, position: int) -> CadenceStep:
    return CadenceStep.objects.select_related("cadence", "offer").get(cadence__name=cadence_name, position=position)


def _prepare(*, step: CadenceStep, language: str) -> tuple[Customer, Touchpoint, dict]:
    """A customer of that language for whom the default step is due now, and its touchpoint."""
    locale, name = CUSTOMERS[language]
    customer = make_customer(name=name, locale=locale)
    trigger = step.cadence.trigger
    Customer.objects.filter(pk=customer.pk).update(
        status=STATUS_OF_TRIGGER.get(trigger, "active"), order_count=5, total_spent=Decimal("900"))
    customer.refresh_from_db()
    anchor, extra, coupon = "", {}, None
    if trigger == "order":
        order = OrderFactory(customer=customer, amount=Decimal("1234.50"), currency="EUR", ordered_at=ORDERED_AT)
        anchor, extra = f"order:{order.pk}", {"order": order}
    elif trigger == "milestone":
        anchor, extra = "milestone:10", {"milestone": 10}
    elif trigger == "anniversary":
        anchor, extra = "anniversary:3", {"years": 3}
    if step.template == "winback_offer":
        Offer.objects.filter(pk=step.offer_id).update(valid_days=30)  # the coupon is issued at the send
    elif step.template == "winback_last_chance":  # the code issued by the previous step, still valid
        coupon = CouponFactory(customer=customer, offer=Offer.objects.get(code_prefix="BACK10"), issued_at=NOW,
                               expires_at=EXPIRES_AT)
    tp = Touchpoint.objects.create(customer=customer, step=step, channel="email", anchor=anchor,
                                   anchor_at=NOW - dt.timedelta(hours=1), due_at=NOW, coupon=coupon,
                                   idempotency_key=f"lang:{language}:{step.pk}")
    return customer, tp, extra


def _render(*, customer: Customer, tp: Touchpoint, extra: dict) -> tuple[Rendered, dict]:
    """The message as the rendering service writes it (the SMS too, which no default step sends)."""
    tp.refresh_from_db()
    context = touchpoint_context(customer=customer, touchpoint_id=tp.pk, template=tp.step.template,
                                 marketing=tp.step.cadence.marketing, coupon=tp.coupon, extra=extra)
    return touchpoint_render(template=tp.step.template, locale=customer.locale, context=context), context


def _visible(html: str) -> str:
    """The words a reader sees in the HTML (no tags, attributes or styles)."""
    body = html.split("<body", 1)[1].split(">", 1)[1]
    return html_lib.unescape(re.sub(r"<[^>]+>", " ", body))


def _without_data(text: str, *, context: dict, tp: Touchpoint, extra: dict) -> str:
    """The message's own words: without URLs, the brand, codes, names and the offer text (the manager's)."""
    text = re.sub(r"https?://\S+", " ", text)
    data = [BRAND, context["customer"].name, context["first_name"]]
    if tp.coupon:
        data += [tp.coupon.code, content_text(obj=tp.coupon.offer, field="script", language=context["customer"].locale)]
    data += [extra["order"].external_id] if "order" in extra else []
    for item in sorted(filter(None, data), key=len, reverse=True):
        text = text.replace(item, " ")
    return text


def _unlinked(text: str) -> str:
    """The message without its links (signed anew at each rendering)."""
    return re.sub(r"https?://[^\s\"<]+", "LINK", text)


def _assert_in_language(part: str, *, language: str) -> None:
    if language in ("ar", "fa"):
        latin = re.findall(r"[A-Za-z]{2,}", part)
        assert not latin, f"Latin words in a {language} message: {latin} in {part!r}"
        assert ARABIC_LETTER.search(part)
    elif language == "hu":
        english = {w for w in re.findall(r"[^\W\d_]+", part) if w.lower() in ENGLISH_WORDS}
        assert not english, f"English words in a Hungarian message: {english} in {part!r}"
    else:
        assert not ARABIC_LETTER.search(part)
        assert {w.lower() for w in re.findall(r"[^\W\d_]+", part)} & ENGLISH_WORDS


@pytest.mark.parametrize("language", ["en", "ar", "fa", "hu"])
@pytest.mark.parametrize(("cadence_name", "position", "template"), DEFAULT_STEPS)
def test_each_default_step_is_written_in_the_customers_language(cadence_name, position, template, language):
    # Given a customer of that language for whom a default step is due
    step = _step(cadence_name, position)
    customer, tp, extra = _prepare(step=step, language=language)
    # When the touchpoint is sent (the email built and handed to the mail backend)
    assert touchpoint_send(touchpoint_id=tp.pk, now=NOW) == "sent"
    (message,) = mail.outbox
    sms, context = _render(customer=customer, tp=tp, extra=extra)  # the same message as an SMS
    assert sms.locale == language
    subject, text, html = message.subject, message.body, message.alternatives[0][0]
    # Then every part is in the customer's language, the customer's own data and the manager's offer aside
    for part in (subject, text, _visible(html), sms.sms):
        _assert_in_language(_without_data(part, context=context, tp=tp, extra=extra), language=language)
    assert f'lang="{language}"' in html
    assert ('dir="rtl"' in html) == (language in ("ar", "fa"))
    # And Arabic and Persian plain text and SMS start right to left, whatever their first word
    if language in ("ar", "fa"):
        assert text.startswith(RLM) and sms.sms.startswith(RLM)
    else:
        assert RLM not in text and RLM not in sms.sms
    # And the dates and the amounts are written as the language writes them
    if template == "thank_you":
        for part in (text, html):
            assert ORDER_DATE[language] in part and AMOUNT[language] in part
        assert AMOUNT[language] in sms.sms
    if template in ("winback_offer", "winback_last_chance"):
        assert tp.coupon.expires_at == EXPIRES_AT
        for part in (text, html, sms.sms):
            assert EXPIRY_DATE[language] in part
        assert tp.coupon.code in text and tp.coupon.code in html
    if template == "winback_offer":
        # And the offer is the manager's text in the message's language (core.content; its fallback if none)
        offer_text = content_text(obj=tp.coupon.offer, field="script", language=language)
        assert offer_text
        for part in (subject, text, html, sms.sms):
            assert offer_text in part
    # And a marketing email carries the one-click unsubscribe headers, with the link the message shows
    headers = message.message()
    if step.cadence.marketing:
        unsubscribe = headers["List-Unsubscribe"].strip("<>")
        assert headers["List-Unsubscribe"] == f"<{unsubscribe}>" and "/t/u/" in unsubscribe
        assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert unsubscribe in text and unsubscribe in html
        assert "/t/u/" in sms.sms
    else:
        assert headers["List-Unsubscribe"] is None and headers["List-Unsubscribe-Post"] is None


@pytest.mark.parametrize("language", ["ar", "fa"])
def test_with_native_digits_dates_and_amounts_use_the_languages_own(language):
    # Given a business that writes Arabic and Persian in their own digits
    _business_digits("native")
    # When an order thank-you and a win-back offer are sent to a customer of that language
    thank_you = _prepare(step=_step("Order thank-you", 1), language=language)
    offer = _prepare(step=_step("Win-back sequence", 2), language=language)
    for customer, tp, _extra in (thank_you, offer):
        assert touchpoint_send(touchpoint_id=tp.pk, now=NOW) == "sent"
    order_message, _ = _render(customer=thank_you[0], tp=thank_you[1], extra=thank_you[2])
    offer_message, _ = _render(customer=offer[0], tp=offer[1], extra=offer[2])
    # Then the dates and the amount are in the native digits, and no Latin digit is left in them
    expected = NATIVE[language]
    assert expected["order_date"] in order_message.text and expected["amount"] in order_message.html
    assert expected["amount"] in order_message.sms
    assert expected["expiry"] in offer_message.text and expected["expiry"] in offer_message.sms
    assert ORDER_DATE[language] not in order_message.text and EXPIRY_DATE[language] not in offer_message.html
    # And so is a count in a sentence (the 10th order)
    customer, tp, extra = _prepare(step=_step("Loyalty milestones", 1), language=language)
    assert touchpoint_send(touchpoint_id=tp.pk, now=NOW) == "sent"
    milestone, _ = _render(customer=customer, tp=tp, extra=extra)
    ten = {"ar": "١٠", "fa": "۱۰"}[language]
    assert ten in milestone.subject and ten in milestone.text and "10" not in milestone.subject


def test_hungarian_and_english_keep_their_digits_under_the_native_setting():
    _business_digits("native")
    customer, tp, extra = _prepare(step=_step("Order thank-you", 1), language="hu")
    assert touchpoint_send(touchpoint_id=tp.pk, now=NOW) == "sent"
    rendered, _ = _render(customer=customer, tp=tp, extra=extra)
    assert ORDER_DATE["hu"] in rendered.text and AMOUNT["hu"] in rendered.text


@pytest.mark.parametrize("language", ["en", "ar", "fa", "hu"])
def test_a_real_smtp_conversation_delivers_the_message_intact(language, smtp):
    # Given the win-back offer due for a customer of that language, and a real SMTP server
    customer, tp, extra = _prepare(step=_step("Win-back sequence", 2), language=language)
    # When it is sent
    assert touchpoint_send(touchpoint_id=tp.pk, now=NOW) == "sent"
    rendered, _context = _render(customer=customer, tp=tp, extra=extra)
    # Then the message that arrived decodes to the same subject, text and HTML (the signed links aside),
    # direction mark included
    (message,) = smtp.messages
    assert str(message["Subject"]).strip() == rendered.subject  # a folded header may keep a leading space
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    html = message.get_body(("html",)).get_content().replace("\r\n", "\n")
    assert _unlinked(text) == _unlinked(rendered.text) and _unlinked(html) == _unlinked(rendered.html)
    assert EXPIRY_DATE[language] in text and EXPIRY_DATE[language] in html
    assert text.startswith(RLM) == (language in ("ar", "fa"))
    # And the unsubscribe headers survived the conversation (long headers may be folded)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = "".join(str(message["List-Unsubscribe"]).split())
    assert unsubscribe.startswith("<http") and unsubscribe.endswith(">") and unsubscribe.strip("<>") in text
