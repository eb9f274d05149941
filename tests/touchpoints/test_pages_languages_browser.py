"""The pages a customer reaches from an email (unsubscribe, survey, comment) and the login page, in headless
Chromium, in English, Arabic, Persian and Hungarian: the page's lang and dir, no text left in another
language (tests.i18n_check), and a phone's width (390 px)."""

import pytest

from tests.browser import browser, page  # noqa: F401 (pytest fixtures)
from tests.i18n_check import page_language_problems
from tests.touchpoints.conftest import make_customer, make_step, make_touchpoint
from tests.touchpoints.test_links import link_for, path_of
from touchpoints.services.links import unsubscribe_url

pytestmark = pytest.mark.django_db(transaction=True)
LANGUAGES = ("en", "ar", "fa", "hu")
DIRECTION = {"en": "ltr", "ar": "rtl", "fa": "rtl", "hu": "ltr"}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def page_in(browser, live_server):
    """A tab whose browser asks for a language (Accept-Language), as a customer's or a person's would."""
    contexts = []

    def make(language: str):
        context = browser.new_context(base_url=live_server.url, viewport=PHONE, locale=language)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def assert_in_language(page, language: str) -> None:
    html = page.locator("html")
    assert (html.get_attribute("lang"), html.get_attribute("dir")) == (language, DIRECTION[language])
    assert page_language_problems(page, language) == []
    assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth"), \
        "horizontal overflow at 390 px"


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_unsubscribe_pages_speak_the_customers_language(page, language):
    # Given a customer of that language, whose browser asks for English
    customer = make_customer(locale=language)
    touchpoint = make_touchpoint(customer, make_step())
    page.set_viewport_size(PHONE)
    # When they open the unsubscribe link in their email
    page.goto(path_of(unsubscribe_url(customer_id=customer.pk, touchpoint_id=touchpoint.pk)))
    # Then the confirmation is in their language and direction, and fits a phone
    assert_in_language(page, language)
    # And so is the page after they confirm
    page.locator("#confirm-unsubscribe").click()
    page.locator("p.ok").wait_for()
    assert_in_language(page, language)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_survey_pages_speak_the_customers_language(page, language):
    # Given a customer of that language with a win-back email's NPS links
    customer = make_customer(locale=language)
    touchpoint = make_touchpoint(customer, make_step(trigger="lapsed", template="winback_miss_you"))
    page.set_viewport_size(PHONE)
    # When they open the "9" link: the question
    page.goto(link_for(touchpoint.pk, "nps", 9))
    assert_in_language(page, language)
    # When they send it: the thanks and the comment form
    page.locator("#send-score").click()
    page.locator("#answer-recorded").wait_for()
    assert_in_language(page, language)
    # When they add a comment: the last thanks
    page.locator("#comment").fill("Fast delivery.")
    page.locator("#send-comment").click()
    page.locator("#comment-saved").wait_for()
    assert_in_language(page, language)
    # And opening the link again says it is already answered
    page.goto(link_for(touchpoint.pk, "nps", 9))
    page.locator("#already-answered").wait_for()
    assert_in_language(page, language)


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_customer_in_a_language_without_pages_reads_their_browsers(page_in, language):
    # Given a German customer (the pages are not in German), and a browser that asks for the language
    customer = make_customer(locale="de")
    touchpoint = make_touchpoint(customer, make_step(trigger="order", template="order_follow_up"))
    page = page_in(language)
    # When they open a survey link, then it is in the browser's language
    page.goto(link_for(touchpoint.pk, "csat", 4))
    assert_in_language(page, language)


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_broken_link_speaks_the_browsers_language(page_in, language):
    # Given a browser that asks for the language
    page = page_in(language)
    # When it opens a link whose token is not valid (no customer known)
    response = page.goto("/t/u/not-a-token/")
    # Then the error page is in that language
    assert response.status == 404
    assert page.locator("p.error").inner_text()
    assert_in_language(page, language)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("how", ["accept-language", "cookie"])
def test_the_login_page_speaks_the_browsers_language(page_in, live_server, settings, language, how):
    # Given a browser that asks for the language, by its header or (asking for English) by the language cookie
    if how == "cookie":
        page = page_in("en-GB")
        page.context.add_cookies([{"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": live_server.url}])
    else:
        page = page_in(language)
    # When it opens the login page
    page.goto("/accounts/login/")
    # Then it is in that language and direction, and fits a phone
    assert_in_language(page, language)
    # And a wrong password is refused in that language
    page.locator("input[name=username]").fill("nobody")
    page.locator("input[name=password]").fill("wrong-password-123")
    with page.expect_navigation():
        page.locator("input[name=password]").press("Enter")
    assert page.locator(".errornote, .errorlist, .error").count() > 0
    assert_in_language(page, language)
