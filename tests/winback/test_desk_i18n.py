"""The desk's words in each language (issue 16), without a browser: data isolated inside sentences, offers
in the customer's language and reasons in the agent's, the timeline's case lines as whole sentences, and API
clients given plain text where the page has markup."""

import re

import pytest
from django.test import Client
from django.utils import translation
from django.utils.html import strip_tags

from core.services import user_language_set
from crm.services.audit import SYSTEM
from crm.services.customers import customer_update
from tests.factories import CaseEventFactory, ComplaintFactory, LeaveReasonFactory, OfferFactory, UserFactory
from tests.winback.test_queue_access import case_now
from winback.models import LeaveReasonTranslation, OfferTranslation, WinbackCase
from core.isolation import sentence_isolated
from winback.selectors import language_code
from winback.services.queue import case_claim_next
from winback.timeline import _case_event

pytestmark = pytest.mark.django_db


def test_a_sentence_isolates_and_escapes_each_piece_of_data():
    # Given a sentence with a name that holds markup
    html = sentence_isolated("Saved: %(name)s (%(outcome)s).", name="<b>Ada</b>", outcome="No answer")
    # Then each piece is in its own <bdi>, escaped, and the sentence around it is intact
    assert html == "Saved: <bdi>&lt;b&gt;Ada&lt;/b&gt;</bdi> (<bdi>No answer</bdi>)."


@pytest.mark.parametrize(("locale", "code"), [("fa-IR", "fa"), ("ar", "ar"), ("hu_HU", "hu"), ("", "en")])
def test_a_locale_gives_the_language_the_content_is_kept_in(locale, code):
    assert language_code(locale=locale) == code


def test_the_case_page_shows_offers_in_the_customers_language_and_reasons_in_the_agents(agent):
    # Given a Persian-speaking customer, a Hungarian-speaking agent, an offer and a reason translated into both
    case = case_now(500)
    customer_update(actor=SYSTEM, customer=case.customer, data={"locale": "fa-IR"})
    offer = OfferFactory(name="Ten off", script="Ten percent off your next order.")
    OfferTranslation.objects.create(offer=offer, language="fa", name="ده درصد تخفیف", script="ده درصد تخفیف روی سفارش بعدی شما.")
    OfferTranslation.objects.create(offer=offer, language="hu", name="Tíz százalék", script="Tíz százalék kedvezmény.")
    reason = LeaveReasonFactory(name="Too expensive")
    LeaveReasonTranslation.objects.create(reason=reason, language="hu", name="Túl drága")
    LeaveReasonTranslation.objects.create(reason=reason, language="fa", name="خیلی گران")
    user_language_set(user=agent, language="hu")
    case_claim_next(agent=agent)
    client = Client()
    client.force_login(agent)
    # When the agent opens the case
    page = client.get(f"/agent/case/{case.pk}/").content.decode()
    # Then the offer's words are the customer's, marked as Persian; the reason is the agent's
    assert re.search(r'<select name="offer"[^>]*lang="fa"', page)
    assert f'<option value="{offer.pk}">ده درصد تخفیف: ده درصد تخفیف روی سفارش بعدی شما.</option>' in page
    assert f'<option value="{reason.pk}">Túl drága</option>' in page
    assert 'id="offer-language"' in page and '<span lang="fa">' in page


def test_the_coupon_shown_on_choosing_an_offer_isolates_the_offer_for_the_page_and_is_plain_for_others(agent):
    # Given an Arabic-speaking customer held by the agent, and an offer written in Arabic too
    case = case_now(500)
    customer_update(actor=SYSTEM, customer=case.customer, data={"locale": "ar"})
    offer = OfferFactory(name="Ten off", code_prefix="TEN")
    OfferTranslation.objects.create(offer=offer, language="ar", name="خصم عشرة", script="خصم عشرة بالمئة.")
    case_claim_next(agent=agent)
    client = Client()
    client.force_login(agent)
    # When the agent chooses the offer
    answer = client.post(f"/agent/case/{case.pk}/coupon/", {"offer": offer.pk}).json()
    # Then the page's version isolates the offer (in the customer's language), the plain one has no markup
    assert answer["code"].startswith("TEN-")
    assert "<bdi>خصم عشرة</bdi>" in answer["html"]
    assert "<" not in answer["text"] and "خصم عشرة" in answer["text"]


def test_the_card_api_gives_the_opening_lines_without_markup(agent):
    # Given a recovery case whose complaint holds characters that are markup in a page
    case = case_now(500)
    WinbackCase.objects.filter(pk=case.pk).update(is_recovery=True)
    ComplaintFactory(customer=case.customer, summary="Box & lid <broken>")
    client = Client()
    client.force_login(agent)
    # When the agent claims it through the API
    card = client.post("/api/queue/next/").json()
    # Then the opening line is the plain sentence, the summary as written
    assert "<bdi>" not in card["call_guide_opening"][0]
    assert "Box & lid <broken>" in card["call_guide_opening"][0]


@pytest.mark.parametrize(("who", "from_status", "expected"), [
    ("caller", "open", "Win-back case #{id} by caller, Open to Won (ordered after a contact or coupon)"),
    ("caller", "", "Win-back case #{id} by caller"),
    ("", "open", "Win-back case #{id}, Open to Won (ordered after a contact or coupon)"),
    ("", "", "Win-back case #{id}"),
])
def test_each_case_line_on_the_timeline_is_one_whole_sentence(who, from_status, expected):
    # Given a case event with or without someone who made it and a change of status
    agent = UserFactory(username=who) if who else None
    event = CaseEventFactory(kind="closed", from_status=from_status, to_status="won", agent=agent, actor="")
    # When it is described for the timeline, in English and in Persian
    title, text = _case_event(event)
    # Then the English reads as one sentence, and the Persian has no English words of it left
    assert strip_tags(text) == expected.format(id=event.case_id)
    if who:  # a person's name is data: isolated, so a Latin name reads right in a right-to-left sentence
        assert f"<bdi>{who}</bdi>" in text
    with translation.override("fa"):
        _title, persian = _case_event(event)
    assert not re.search(r"\b(by|to|Win-back|case)\b", persian), persian
