"""The agent desk in headless Chromium: the coupon shows as soon as an offer is chosen and the saved call
uses that very code; "put back" then `n` brings another customer; the hold counts down; each callback
preset fills a time inside calling hours; a refused save puts the focus on the field that failed; an agent
who strays into the admin finds the way back to the queue."""

import datetime as dt
import re
import zoneinfo

import pytest
from django.utils import timezone

from crm.services.audit import SYSTEM
from crm.services.customers import customer_update
from tests.browser import assert_png, browser, login, page, screenshot  # noqa: F401 (browser, page: fixtures)
from tests.factories import ComplaintFactory
from tests.winback.test_agent_browser import back10, named_case
from winback.models import CallSettings, Coupon, CouponReservation, Disposition, WinbackCase
from winback.services.calling_hours import inside_calling_hours

from playwright.sync_api import expect  # after tests.browser: it skips the module when playwright is missing

pytestmark = pytest.mark.django_db
PASSWORD = "correct-horse-battery-staple"  # tests.factories.UserFactory's
CODE = re.compile(r"BACK10-[A-Z2-9]{8}")


def start(page, width: int = 1280) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    page.goto("/agent/")
    login(page, "agent", PASSWORD)
    expect(page.locator("#next")).to_be_focused()


def take_next(page, name: str) -> None:
    """`n` on the queue page (once its script has loaded), then wait for the card's script: it puts the
    focus on the first outcome."""
    page.wait_for_load_state("load")
    page.keyboard.press("n")
    expect(page.locator("h1")).to_contain_text(name)
    expect(page.locator('#disposition input[name="outcome"]').first).to_be_focused()


def no_horizontal_overflow(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"the page is {width}px wide in a {page.viewport_size['width']}px window"


@pytest.mark.parametrize("width", [1440, 390])
def test_the_coupon_shows_when_the_offer_is_chosen_and_the_saved_call_uses_it(page, agent, width):
    offer = back10()
    first, second = named_case("Ada Lovelace", priority=500), named_case("Grace Hopper", priority=100)
    start(page, width)
    take_next(page, "Ada Lovelace")
    expect(page).to_have_url(re.compile(rf"/agent/case/{first.pk}/$"))
    no_horizontal_overflow(page)

    # When the agent chooses the offer: the code is on the card at once, in a live region, not yet a coupon
    live = page.locator("#offer-coupon")
    expect(live).to_have_attribute("aria-live", "polite")
    page.locator("#id_offer").select_option(value=str(offer.pk))
    expect(live.locator(".coupon-code")).to_have_text(CODE)
    shown = live.locator(".coupon-code").inner_text()
    expect(live).to_contain_text("valid until")
    assert not Coupon.objects.exists() and CouponReservation.objects.get().code == shown
    no_horizontal_overflow(page)
    assert_png(screenshot(page, f"agent-desk-coupon-before-save-{width}"))
    # Choosing no offer and then the offer again: one live code at a time
    page.locator("#id_offer").select_option(value="")
    expect(live).to_contain_text("No offer")
    page.locator("#id_offer").select_option(value=str(offer.pk))
    expect(live.locator(".coupon-code")).to_have_text(CODE)
    shown = live.locator(".coupon-code").inner_text()
    assert list(CouponReservation.objects.values_list("code", flat=True)) == [shown]

    # When the call is saved: the same code, once
    page.get_by_label("Reached - will return").check()
    page.keyboard.press("Control+Enter")
    expect(page).to_have_url(re.compile(rf"/agent/case/{second.pk}/$"))
    expect(page.locator(".messages li.warning")).to_contain_text(shown)
    expect(page.locator("#last-coupon")).to_contain_text(shown)
    disposition = Disposition.objects.select_related("coupon").get(case=first)
    assert disposition.coupon.code == shown and Coupon.objects.count() == 1
    assert not CouponReservation.objects.exists()
    # And the next card starts without a code
    expect(page.locator("#offer-coupon")).to_have_text("")


def test_put_back_then_next_gives_another_customer(page, agent):
    first, second = named_case("Ada Lovelace", priority=500), named_case("Grace Hopper", priority=100)
    start(page)
    take_next(page, "Ada Lovelace")
    page.get_by_role("button", name="Put back in the queue").click()
    expect(page).to_have_url(re.compile(r"/agent/$"))
    expect(page.locator("#next")).to_be_focused()
    page.wait_for_load_state("load")
    page.keyboard.press("n")
    expect(page).to_have_url(re.compile(rf"/agent/case/{second.pk}/$"))
    expect(page.locator("h1")).to_contain_text("Grace Hopper")
    first.refresh_from_db()
    assert first.claimed_by is None and first.skipped_until is not None
    assert first.events.filter(kind="released", reason="Put back in the queue.").exists()


def test_the_hold_counts_down_the_call_timer_counts_up_and_the_page_says_when_the_hold_ran_out(page, agent):
    case = named_case("Ada Lovelace", priority=500)
    start(page)
    take_next(page, "Ada Lovelace")
    hold, timer = page.locator("#hold-left"), page.locator("#call-timer")
    expect(hold).to_have_text(re.compile(r"^1[45]:[0-5]\d$"))  # a 15-minute lease

    def seconds(text: str) -> int:
        minutes, secs = text.split(":")
        return int(minutes) * 60 + int(secs)

    before, timer_before = seconds(hold.inner_text()), seconds(timer.inner_text())
    page.wait_for_timeout(2200)
    after, timer_after = seconds(hold.inner_text()), seconds(timer.inner_text())
    assert 1 <= before - after <= 4, (before, after)
    assert 1 <= timer_after - timer_before <= 4, (timer_before, timer_after)
    # When the hold runs out while the page is open: it says so, in a live region
    WinbackCase.objects.filter(pk=case.pk).update(lease_until=timezone.now() + dt.timedelta(seconds=2))
    page.reload()
    status = page.locator("#hold-status")
    expect(status).to_have_attribute("aria-live", "assertive")
    expect(status).to_contain_text("ran out", timeout=6000)
    expect(hold).to_have_text("0:00")


def test_each_callback_preset_fills_a_time_inside_calling_hours(page, agent):
    case = named_case("Ada Lovelace", priority=500)
    calls = CallSettings.objects.get(pk=1)
    zones = case.customer.call_zones
    zone = zoneinfo.ZoneInfo(zones.split(",")[0])
    start(page)
    take_next(page, "Ada Lovelace")
    field = page.locator("#id_callback_at")
    buttons = page.locator("#callback-presets button[data-value]")
    expect(buttons).to_have_count(3)
    for i in range(3):
        button = buttons.nth(i)
        field.fill("")
        button.click()
        value = field.input_value()
        assert value == button.get_attribute("data-value")
        instant = dt.datetime.strptime(value, "%Y-%m-%dT%H:%M").replace(tzinfo=zone)
        assert instant > timezone.now(), value
        assert inside_calling_hours(call_zones=zones, now=instant, start=calls.calling_start, end=calls.calling_end), value
        expect(page.get_by_label("Callback requested")).to_be_checked()
        expect(field).to_be_focused()
    # The last preset saves as it is
    page.keyboard.press("Control+Enter")
    expect(page).to_have_url(re.compile(r"/agent/$"))
    assert Disposition.objects.get(case=case).callback_at is not None


def test_a_refused_save_puts_the_focus_on_the_field_that_failed(page, agent):
    case = named_case("Ada Lovelace", priority=500)
    start(page)
    take_next(page, "Ada Lovelace")
    # A callback (key 3) saved without its time
    page.keyboard.press("3")
    field = page.locator("#id_callback_at")
    expect(field).to_be_focused()
    page.keyboard.press("Control+Enter")
    expect(page.locator("#id_callback_at_error")).to_contain_text("A callback needs a date and time")
    expect(field).to_be_focused()
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_have_attribute("aria-describedby", re.compile(r"\bid_callback_at_error\b"))
    # A time outside calling hours: the service refuses it, the focus is on the field again
    zone = zoneinfo.ZoneInfo(case.customer.call_zones)
    three_am = (timezone.now().astimezone(zone) + dt.timedelta(days=1)).replace(hour=3, minute=0)
    field.fill(f"{three_am:%Y-%m-%dT%H:%M}")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#id_callback_at_error")).to_contain_text("Outside calling hours")
    expect(field).to_be_focused()
    # And the keys still work: 1 picks the first outcome once the focus leaves the field
    page.keyboard.press("Escape")
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("1")
    expect(page.get_by_label("Reached - will return")).to_be_checked()
    assert not Disposition.objects.exists()


def test_an_agent_in_the_admin_finds_the_way_back_to_the_queue(page, agent):
    start(page)
    page.goto("/admin/")
    link = page.locator("#back-to-work a")
    expect(link).to_be_visible()
    link.click()
    expect(page).to_have_url(re.compile(r"/agent/$"))
    expect(page.locator("#next")).to_be_visible()


def test_the_recovery_card_opens_with_the_complaint_and_names_the_language(page, agent):
    case = named_case("Ada Lovelace", priority=500)
    customer_update(actor=SYSTEM, customer=case.customer, data={"locale": "ar"})
    ComplaintFactory(customer=case.customer, category="delivery", summary="Parcel lost in March")
    WinbackCase.objects.filter(pk=case.pk).update(is_recovery=True)
    start(page, 390)
    take_next(page, "Ada Lovelace")
    guide = page.locator("#call-guide")
    expect(guide).to_have_attribute("data-kind", "recovery")
    expect(guide.locator(".guide-why")).to_contain_text("Parcel lost in March")
    expect(page.locator("#language")).to_contain_text("Arabic")
    no_horizontal_overflow(page)
