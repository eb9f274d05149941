"""The agents' page end to end, in headless Chromium: log in, claim with the keyboard, book a callback
with an offer, read the coupon out, and land on the next customer."""

import datetime as dt
import re
import zoneinfo

from django.utils import timezone

from crm.models import Contact
from crm.services.audit import SYSTEM
from crm.services.customers import customer_update
from tests.browser import assert_png, browser, login, page, screenshot  # noqa: F401 (browser, page: fixtures)
from tests.winback.test_queue_access import case_now
from winback.models import Disposition, Offer, WinbackCase

from playwright.sync_api import expect  # after tests.browser: it skips the module when playwright is missing

PASSWORD = "correct-horse-battery-staple"  # tests.factories.UserFactory's


def back10() -> Offer:
    # Seeded by a migration; a transactional test before this one may have flushed it.
    offer, _ = Offer.objects.get_or_create(
        code_prefix="BACK10", defaults={"name": "10% off the next order", "valid_days": 30,
                                        "script": "Ten percent off your next order, valid for 30 days."})
    return offer


def named_case(name: str, priority: int) -> WinbackCase:
    case = case_now(priority)
    customer_update(actor=SYSTEM, customer=case.customer, data={"name": name})
    case.customer.refresh_from_db()
    return case


def test_an_agent_claims_books_a_callback_with_an_offer_and_reads_the_coupon(page, agent):
    offer = back10()
    first, second = named_case("Ada Lovelace", priority=500), named_case("Grace Hopper", priority=100)
    zone = zoneinfo.ZoneInfo(first.customer.call_zones.split(",")[0])

    # 1. Log in through the login page (an anonymous visit to the queue lands there).
    page.goto("/agent/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    login(page, "agent", PASSWORD)
    expect(page).to_have_url(re.compile(r"/agent/$"))

    # 2. "n" claims the next customer: the higher priority one, with everything needed for the call.
    expect(page.locator("#next")).to_be_focused()
    page.keyboard.press("n")
    expect(page).to_have_url(re.compile(rf"/agent/case/{first.pk}/$"))
    expect(page.locator("h1")).to_contain_text("Ada Lovelace")
    expect(page.locator("#phone")).to_have_text(first.customer.phone)
    local_now = timezone.now().astimezone(zone)
    shown_local_time = page.locator("#local-time").inner_text()  # checked at the end, see there
    expect(page.locator("#local-time").locator("..")).to_contain_text(f"({first.customer.call_zones})")
    expect(page.get_by_role("heading", name="Call guide")).to_be_visible()
    expect(page.get_by_text("Ask why they stopped ordering")).to_be_visible()

    # 3. Callback requested (key 3) with an offer, a time tomorrow noon in the customer's zone, a note.
    page.keyboard.press("3")
    expect(page.get_by_label("Callback requested")).to_be_checked()
    callback_field = page.locator("#id_callback_at")
    expect(callback_field).to_be_focused()
    tomorrow_noon = (local_now + dt.timedelta(days=1)).replace(hour=12, minute=0, second=0, microsecond=0)
    callback_field.fill(f"{tomorrow_noon:%Y-%m-%dT%H:%M}")
    page.locator("#id_offer").select_option(value=str(offer.pk))
    page.locator("#id_note").press_sequentially("Busy at work, call back at lunch. Offered 10% off.")
    card_png = screenshot(page, "agent-card-before-save")
    page.keyboard.press("Control+Enter")

    # 4. The coupon to read out, and already the next customer's card.
    expect(page).to_have_url(re.compile(rf"/agent/case/{second.pk}/$"))
    banner = page.locator(".messages li.warning")
    expect(banner).to_contain_text(re.compile(r"Coupon for Ada Lovelace: BACK10-[A-Z0-9]{8} "))
    expect(page.locator(".messages")).to_contain_text("Saved: Ada Lovelace (Callback requested).")
    expect(page.locator("h1")).to_contain_text("Grace Hopper")
    next_png = screenshot(page, "agent-next-customer-with-coupon")

    # 5. What was stored.
    disposition = Disposition.objects.select_related("coupon", "contact").get(case=first)
    assert disposition.outcome == "callback_requested"
    assert disposition.coupon is not None and disposition.coupon.case_id == first.pk
    assert disposition.coupon.offer_id == offer.pk and disposition.coupon.customer_id == first.customer_id
    assert disposition.coupon.code in banner.inner_text()
    assert disposition.note == "Busy at work, call back at lunch. Offered 10% off."
    first.refresh_from_db()
    assert first.callback_agent == agent
    assert first.callback_at == tomorrow_noon.astimezone(dt.timezone.utc) == disposition.callback_at
    assert first.claimed_by is None
    contact = Contact.objects.get(pk=disposition.contact_id)
    assert contact.customer_id == first.customer_id and contact.outcome == "callback_requested"
    assert contact.channel == Contact.Channel.CALL
    second.refresh_from_db()
    assert second.claimed_by == agent

    page.get_by_role("link", name="My callbacks").click()
    expect(page).to_have_url(re.compile(r"/agent/callbacks/$"))
    row = page.locator("tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Ada Lovelace")

    # 6. The screenshots are real pictures.
    assert_png(card_png)
    assert_png(next_png)

    # Last, so that a wrong clock on the card does not hide the rest of the flow: "local time" is the
    # customer's wall clock (the agent checks it before dialling), not the server's.
    expected = {f"{t:%H:%M}" for t in (local_now, local_now - dt.timedelta(minutes=1))}
    assert shown_local_time in expected, (
        f"the card says local time {shown_local_time} in {first.customer.call_zones}, but it is {local_now:%H:%M} "
        f"there ({timezone.now():%H:%M} UTC); is it rendered in the server's TIME_ZONE instead of the customer's?")


def test_a_manager_opens_the_queue_and_an_anonymous_visitor_is_sent_to_log_in(page, manager):
    page.goto("/agent/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/agent/$"))
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()

    login(page, "manager", PASSWORD)
    expect(page).to_have_url(re.compile(r"/agent/$"))
    expect(page.locator("#next")).to_be_visible()
    expect(page.locator("header nav")).to_contain_text("manager")
