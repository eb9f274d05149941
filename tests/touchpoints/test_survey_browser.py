"""A survey link in a real browser: open it, see the clicked score chosen, change it, send, add a comment;
on a desktop (1440 px) and a phone (390 px), in English and in Arabic (right to left)."""

import pytest

from crm.models import Feedback
from tests.browser import assert_png, browser, page, screenshot  # noqa: F401 (browser, page: fixtures)
from tests.touchpoints.conftest import make_customer, make_step, make_touchpoint
from tests.touchpoints.test_links import link_for

pytestmark = pytest.mark.django_db(transaction=True)

WORDS = {
    "en": {"question": "How likely are you to recommend", "send": "Send my answer", "recorded": "We have recorded your score",
           "comment": "Would you like to tell us more?", "saved": "Thanks for your comment"},
    "ar": {"question": "ما مدى احتمال أن توصي", "send": "أرسل إجابتي", "recorded": "سجّلنا تقييمك",
           "comment": "هل تودّ أن تخبرنا بالمزيد؟", "saved": "شكرًا لك على تعليقك"},
}


def fits_the_width(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


@pytest.mark.parametrize(("width", "locale"), [(1440, "en"), (390, "en"), (1440, "ar"), (390, "ar")])
def test_a_customer_answers_the_survey_and_adds_a_comment(page, width, locale):
    # Given a customer's win-back email with its NPS links
    customer = make_customer(locale=locale)
    tp = make_touchpoint(customer, make_step(trigger="lapsed", template="winback_miss_you"))
    words = WORDS[locale]
    page.set_viewport_size({"width": width, "height": 900})
    # When they open the "7" link
    page.goto(link_for(tp.pk, "nps", 7))
    # Then the question is shown in their language and direction, with 7 chosen, and nothing is recorded yet
    html = page.locator("html")
    assert (html.get_attribute("lang"), html.get_attribute("dir")) == (locale, "rtl" if locale == "ar" else "ltr")
    assert words["question"] in page.locator("legend").inner_text()
    assert page.locator("#score-7").is_checked()
    assert page.locator("input[name=score]:checked").count() == 1
    assert fits_the_width(page)
    assert not Feedback.objects.exists()
    assert_png(screenshot(page, f"survey-question-{locale}-{width}"))
    # When they change their mind to 8 and press the button
    page.locator("label[for=score-8]").click()
    page.get_by_role("button", name=words["send"]).click()
    # Then their answer is recorded and the page offers a comment
    assert words["recorded"] in page.locator("#answer-recorded").inner_text()
    assert "8 / 10" in page.locator("#answer-recorded").inner_text()
    feedback = Feedback.objects.get()
    assert (feedback.customer_id, feedback.kind, feedback.score) == (customer.pk, "nps", 8)
    assert fits_the_width(page)
    # When they write a comment and send it
    page.get_by_label(words["comment"]).fill("Delivery was slow, the rest was great.")
    page.locator("#send-comment").click()
    # Then it is saved on their answer
    assert words["saved"] in page.locator("#comment-saved").inner_text()
    feedback.refresh_from_db()
    assert (feedback.score, feedback.comment) == (8, "Delivery was slow, the rest was great.")
    assert fits_the_width(page)
