"""The acquisition spend pages of the admin in each language: a manager lists the spend by month and channel
and adds a month's spend; the pages are in their language, the month, channel and amount isolated, and a
refused spend says why in the language."""

import datetime as dt
import re
from decimal import Decimal

import pytest

from crm.models import AcquisitionSpend
from tests.browser import browser, login, page  # noqa: F401 (browser, page: fixtures)
from tests.factories import AcquisitionSpendFactory, UserPreferenceFactory
from tests.i18n_check import page_language_problems

from playwright.sync_api import expect  # after tests.browser: it skips the module when playwright is missing

pytestmark = pytest.mark.django_db
PASSWORD = "correct-horse-battery-staple"  # tests.factories.UserFactory's
LIST = "/admin/crm/acquisitionspend/"


@pytest.mark.parametrize("language", ["en", "ar", "fa", "hu"])
def test_the_spend_pages_are_in_the_managers_language(page, manager, language):
    # Given a manager in this language and two months of spend, one split by channel
    UserPreferenceFactory(user=manager, language=language)
    AcquisitionSpendFactory(month=dt.date(2026, 1, 1), channel="", amount=Decimal("1500.00"))
    AcquisitionSpendFactory(month=dt.date(2026, 2, 1), channel="search ads", amount=Decimal("320.50"))

    # When they open the list of spend
    page.goto(f"/accounts/login/?next={LIST}")
    login(page, "manager", PASSWORD)
    expect(page).to_have_url(re.compile(re.escape(LIST) + "$"))

    # Then it is in their language, with the months, channels and amounts isolated
    expect(page.locator("#result_list")).to_be_visible()
    expect(page.locator('#result_list bdi[dir="ltr"]', has_text="2026-02")).to_have_count(1)
    expect(page.locator("#result_list bdi", has_text="search ads")).to_have_count(1)
    problems = page_language_problems(page, language)
    assert not problems, f"{language} spend list:\n" + "\n".join(problems)

    # When they add a spend in another currency
    page.goto(f"{LIST}add/")
    page.fill("#id_month", "2026-03")
    page.fill("#id_amount", "10")
    page.fill("#id_currency", "USD")
    page.locator('input[name="_save"]').click()

    # Then the page says why in their language and nothing is written
    error = page.locator(".field-currency .errorlist").first
    expect(error).to_contain_text("EUR")
    expect(error).to_contain_text("USD")
    problems = page_language_problems(page, language)
    assert not problems, f"{language} refused spend:\n" + "\n".join(problems)
    assert AcquisitionSpend.objects.count() == 2
