"""The agent desk in each language (issue 16), in headless Chromium: an agent whose own preference is en, ar,
fa or hu claims a case, saves a call with a reason for leaving and an offer, then books a callback. Every
page is in the agent's language and direction, fits a desktop and a phone, isolates its data (the customer's
name, the days since the last order, the hold's countdown), and shows the offer in the customer's language."""

import datetime as dt
import re

import pytest
from django.utils import timezone, translation
from django.utils.html import strip_tags

from core.content import content_text
from core.services import user_language_set
from crm.models import Customer
from crm.services.audit import SYSTEM
from crm.services.customers import customer_update
from tests.browser import assert_png, browser, login, page, screenshot  # noqa: F401 (browser, page: fixtures)
from tests.i18n_check import page_language_problems
from tests.winback.test_agent_browser import back10
from tests.winback.test_queue_access import case_now
from winback.models import Disposition, LeaveReason, WinbackCase

from playwright.sync_api import expect  # after tests.browser: it skips the module when playwright is missing

pytestmark = pytest.mark.django_db
PASSWORD = "correct-horse-battery-staple"  # tests.factories.UserFactory's
DIRECTION = {"en": "ltr", "ar": "rtl", "fa": "rtl", "hu": "ltr"}
# Two customers per language, named as people who speak it are, with their locale as stored by the shop.
CUSTOMERS = {
    "en": (("Ada Lovelace", "en-GB"), ("Grace Hopper", "en-US")),
    "ar": (("فاطمة الزهراء", "ar-EG"), ("عمر الفاروق", "ar")),
    "fa": (("مریم رضایی", "fa-IR"), ("علی محمدی", "fa")),
    "hu": (("Kovács Éva", "hu-HU"), ("Szabó Péter", "hu")),
}
DAYS_SINCE_LAST_ORDER = 321
DIGITS = r"[0-9٠-٩۰-۹]"  # Western, Arabic-Indic or Persian digits, whichever the language's formats use


def customer_case(name: str, locale: str, priority: int) -> WinbackCase:
    case = case_now(priority)
    customer_update(actor=SYSTEM, customer=case.customer, data={"name": name, "locale": locale})
    # The card's figures come from the customer's row: an order count and a last order long ago.
    Customer.objects.filter(pk=case.customer_id).update(
        order_count=4, last_order_at=timezone.now() - dt.timedelta(days=DAYS_SINCE_LAST_ORDER, hours=2))
    case.customer.refresh_from_db()
    return case


def page_is_right(page, language: str) -> None:
    """In the language and its direction, nothing left in English, no sideways scrolling on a desktop or a phone."""
    # The URL changes when the navigation commits, before the stylesheet has loaded: an unstyled page is wider
    # than a phone, so the widths are measured once the page has loaded.
    page.wait_for_load_state("load")
    expect(page.locator("html")).to_have_attribute("lang", language)
    expect(page.locator("html")).to_have_attribute("dir", DIRECTION[language])
    problems = page_language_problems(page, language)
    assert problems == [], f"{page.url}: {problems}"
    for width in (1440, 390):
        page.set_viewport_size({"width": width, "height": 900})
        fits = page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
        assert fits, f"{page.url} is wider than a {width}px window in {language}"
    page.set_viewport_size({"width": 1440, "height": 900})


def sentence(language: str, singular: str, plural: str, count: int) -> str:
    """The card's sentence as the catalogue has it, without its markup (the text a person reads)."""
    with translation.override(language):
        return strip_tags(translation.ngettext(singular, plural, count) % {"counter": count})


@pytest.mark.parametrize("language", ["en", "ar", "fa", "hu"])
def test_the_desk_speaks_the_agents_language_and_isolates_its_data(page, agent, language):
    # Given an agent whose own language is this one, an offer, a reason for leaving and two customers
    user_language_set(user=agent, language=language)
    offer = back10()
    reason, _created = LeaveReason.objects.get_or_create(name="Too expensive", defaults={"position": 1})
    (first_name, first_locale), (second_name, second_locale) = CUSTOMERS[language]
    first = customer_case(first_name, first_locale, priority=500)
    second = customer_case(second_name, second_locale, priority=100)

    # When they log in and open the desk
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto("/agent/")
    login(page, "agent", PASSWORD)
    expect(page).to_have_url(re.compile(r"/agent/$"))
    page_is_right(page, language)

    # And claim the next customer
    page.wait_for_load_state("load")
    page.locator("#next").click()
    expect(page).to_have_url(re.compile(rf"/agent/case/{first.pk}/$"))
    page_is_right(page, language)
    # Then the customer's name is isolated, and so are the figures inside the card's sentences
    expect(page.locator("h1 bdi#customer-name")).to_have_text(first_name)
    last_order = page.locator("#last-order")
    expect(last_order.locator("bdi")).to_have_text(re.compile(rf"^{DIGITS}+$"))
    days = last_order.locator("bdi").inner_text()
    assert int(days.translate(str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789"))) == DAYS_SINCE_LAST_ORDER
    expected = sentence(language, "last order <bdi>%(counter)s</bdi> day ago", "last order <bdi>%(counter)s</bdi> days ago",
                        DAYS_SINCE_LAST_ORDER).replace(str(DAYS_SINCE_LAST_ORDER), days)
    expect(last_order).to_have_text(expected)
    # And the hold's countdown reads left to right whatever the page's direction ("14:59", never "59:14")
    hold = page.locator("#hold-left")
    expect(hold).to_have_attribute("dir", "ltr")
    expect(hold).to_have_text(re.compile(r"^1[45]:[0-5]\d$"))
    assert page.evaluate("getComputedStyle(document.getElementById('hold-left')).direction") == "ltr"
    # And the offer's script is in the customer's language, marked as such; the reasons in the agent's
    customer_language = first_locale.split("-")[0]
    offer_select = page.locator("#id_offer")
    expect(offer_select).to_have_attribute("lang", customer_language)
    script = content_text(obj=offer, field="script", language=customer_language)
    expect(offer_select.locator(f'option[value="{offer.pk}"]')).to_contain_text(script)
    expect(page.locator("#offer-language span[lang]")).to_have_attribute("lang", customer_language)
    expect(page.locator(f'#id_reason option[value="{reason.pk}"]')).to_have_text(
        content_text(obj=reason, field="name", language=language))

    # When they record a reached customer with a reason for leaving and an offer
    page.locator('#disposition input[name="outcome"][value="reached_declined"]').check()
    page.locator("#id_reason").select_option(value=str(reason.pk))
    offer_select.select_option(value=str(offer.pk))
    coupon = page.locator("#offer-coupon .coupon-code")
    expect(coupon).to_have_text(re.compile(r"^BACK10-[A-Z2-9]{8}$"))
    expect(coupon).to_have_attribute("dir", "ltr")
    assert page_language_problems(page, language) == []
    page.set_viewport_size({"width": 390, "height": 900})
    assert_png(screenshot(page, f"desk-{language}-case-390"))
    page.set_viewport_size({"width": 1440, "height": 900})
    page.locator("#save").click()

    # Then the next customer's card says what was saved and the coupon to read out, in the language
    expect(page).to_have_url(re.compile(rf"/agent/case/{second.pk}/$"))
    expect(page.locator(".messages li.warning bdi").first).to_have_text(first_name)
    page_is_right(page, language)
    disposition = Disposition.objects.select_related("coupon").get(case=first)
    assert disposition.reason_id == reason.pk and disposition.coupon.offer_id == offer.pk

    # When they book a callback with a quick time
    page.locator("#callback-presets button[data-value]").first.click()
    expect(page.locator('#disposition input[name="outcome"][value="callback_requested"]')).to_be_checked()
    page.locator("#save").click()

    # Then the queue page lists it, and so does their callbacks page
    expect(page).to_have_url(re.compile(r"/agent/$"))
    expect(page.locator("table bdi", has_text=second_name)).to_be_visible()
    page_is_right(page, language)
    page.goto("/agent/callbacks/")
    expect(page.locator("td bdi", has_text=second_name)).to_be_visible()
    expect(page.locator("td span[dir=ltr]")).to_have_text(second.customer.phone)
    page_is_right(page, language)
    assert WinbackCase.objects.get(pk=second.pk).callback_at is not None
