"""The customer page and the customer list in each language (issue 16): a manager whose preference is
English, Arabic, Persian or Hungarian opens a customer with orders, a case, calls, touchpoints and feedback,
then the list of customers. The page is in their language and direction, no English is left, nothing is
wider than the screen, and data inside sentences (the rhythm's days, the days since the last order) is
isolated so it reads right to left."""

import re
from decimal import Decimal

import pytest

from tests.browser import browser, login, page  # noqa: F401 (browser, page: fixtures)
from tests.crm.test_customer_360_browser import overflow
from tests.crm.test_customer_timeline import ago, one_of_everything
from tests.factories import (
    ContactFactory, CustomerFactory, FeedbackFactory, OrderFactory, UserFactory, UserPreferenceFactory,
    WinbackCaseFactory,
)
from tests.i18n_check import page_language_problems

from playwright.sync_api import expect  # after tests.browser: it skips the module when playwright is missing

pytestmark = pytest.mark.django_db
PASSWORD = "correct-horse-battery-staple"  # tests.factories.UserFactory's
LANGUAGES = ("en", "ar", "fa", "hu")
# A name as the customers of each market write it.
NAMES = {"en": "Margaret Holloway", "ar": "فاطمة الزهراء بن يوسف", "fa": "سارا محمدی‌نژاد", "hu": "Kovácsné Szűcs Erzsébet"}
# "every N days" in each language, with the number (in whatever digits and separator the language uses).
RHYTHM = {
    "en": r"^every \S+ days$",
    "ar": r"^كل \S+ (يوم|يومًا|أيام)$",
    "fa": r"^هر \S+ روز$",
    "hu": r"^\S+ naponta$",
}
# "30 days ago" in each language.
SINCE = {"en": r"^\S+ days ago$", "ar": r"^منذ \S+ يومًا$", "fa": r"^\S+ روز پیش$", "hu": r"^\S+ napja$"}


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_customer_page_and_list_are_in_the_managers_language(page, manager, language):
    # Given a manager whose language preference is this language, and a customer with a history
    UserPreferenceFactory(user=manager, language=language)
    # (four orders 10 days apart, the last one 30 days ago: a rhythm of 10.0 days)
    customer = CustomerFactory(name=NAMES[language], status="at_risk", order_count=4,
                               total_spent=Decimal("229.70"), last_order_at=ago(30), phone="+36301234567")
    for days in (60, 50, 40):
        OrderFactory(customer=customer, ordered_at=ago(days), amount=Decimal("49.90"))
    one_of_everything(customer, start=30, agent=UserFactory(username="caller"))  # its order is 30 days ago
    ContactFactory(customer=customer, channel="call", direction="outbound", outcome="no_answer",
                   occurred_at=ago(3), agent=UserFactory(username="second-caller"))
    FeedbackFactory(customer=customer, kind="csat", score=4, responded_at=ago(2))
    WinbackCaseFactory(customer=customer, claimed_by=UserFactory(username="holder"))
    url = f"/admin/crm/customer/{customer.pk}/change/"

    # When they log in and open the customer
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"/accounts/login/?next={url}")
    login(page, "manager", PASSWORD)
    expect(page).to_have_url(re.compile(re.escape(url) + "$"))

    # Then the page is in their language and direction
    expect(page.locator("html")).to_have_attribute("lang", language)
    expect(page.locator("html")).to_have_attribute("dir", "rtl" if language in ("ar", "fa") else "ltr")
    problems = page_language_problems(page, language)
    assert not problems, f"{language} customer page:\n" + "\n".join(problems)
    # And the rhythm reads as a whole sentence in the language, its number isolated
    rhythm = page.locator('#customer-summary [data-fact="rhythm"] .c360-value')
    assert re.match(RHYTHM[language], rhythm.inner_text().strip()), rhythm.inner_text()
    expect(rhythm.locator("bdi")).to_have_count(1)
    assert re.fullmatch(r"(10|۱۰)[.,٫](0|۰)", rhythm.locator("bdi").inner_text()), rhythm.locator("bdi").inner_text()
    # And so does the duration since the last order ("40 days ago"), its number isolated
    since = page.locator('#customer-summary [data-fact="last-order"] .c360-how')
    assert re.match(SINCE[language], since.inner_text().strip()), since.inner_text()
    expect(since.locator("bdi")).to_have_count(1)
    assert re.fullmatch(r"30|۳۰", since.locator("bdi").inner_text()), since.locator("bdi").inner_text()
    # And the customer's name, phone and the timeline's data are isolated from the sentence around them
    assert page.locator("#customer-summary bdi, #timeline bdi").count() > 5
    expect(page.locator("#id_phone")).to_have_attribute("dir", "ltr")
    # And nothing is wider than the screen
    problems = overflow(page)

    # When they open the list of customers
    page.goto("/admin/crm/customer/")
    # Then it is in their language too, as narrow as the screen
    expect(page.locator("#result_list")).to_be_visible()
    expect(page.locator("#result_list")).to_contain_text(NAMES[language])
    language_problems = page_language_problems(page, language)
    assert not language_problems, f"{language} customer list:\n" + "\n".join(language_problems)
    problems += overflow(page)
    assert not problems, "wider than the screen:\n" + "\n".join(problems)
