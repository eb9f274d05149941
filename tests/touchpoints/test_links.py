import datetime as dt
import re
import threading
import time
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar

import pytest
from django.conf import settings
from django.core import signing
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from crm.models import AuditEntry, Customer, Feedback
from tests.touchpoints.conftest import NOW, make_customer, make_step, make_touchpoint
from touchpoints.models import CadenceStep, Touchpoint
from touchpoints.services.links import (
    ANSWER_TOKEN_MAX_AGE, SCORE_SALT, UNSUBSCRIBE_SALT, answer_token, score_links, unsubscribe_url,
)
from touchpoints.services.materialize import touchpoints_materialize
from touchpoints.services.sending import touchpoint_send
from winback.models import WinbackCase

pytestmark = pytest.mark.django_db

ONE_CLICK = "List-Unsubscribe=One-Click"  # the RFC 8058 body mail clients POST
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def browser() -> Client:
    """No login, no cookie, and CSRF enforced: what a mail client or a customer's browser has."""
    return Client(enforce_csrf_checks=True)


def path_of(url: str) -> str:
    assert url.startswith(settings.SITE_URL.rstrip("/") + "/")
    return url[len(settings.SITE_URL.rstrip("/")):]


def token_of(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[1]


def tampered(url: str) -> str:
    """The same link with one character of the signature (the last part of the token) changed."""
    path = path_of(url)
    head, token = path.rstrip("/").rsplit("/", 1)
    last = token[-1]
    return f"{head}/{token[:-1]}{'A' if last != 'A' else 'B'}/"


def at_risk(customer: Customer) -> Customer:
    customer.status = "at_risk"
    customer.save(update_fields=["status"])
    return customer


def unsubscribe_link(customer: Customer) -> tuple[str, int]:
    tp = make_touchpoint(at_risk(customer))
    return path_of(unsubscribe_url(customer_id=customer.pk, touchpoint_id=tp.pk)), tp.pk


def consent_audits(customer: Customer):
    return AuditEntry.objects.filter(entity="crm.customer", entity_id=customer.pk, action="update")


def follow_up_touchpoint(customer: Customer | None = None):
    step = make_step(trigger="order", template="order_follow_up")
    return make_touchpoint(customer or make_customer(), step)


def link_for(touchpoint_id: int, kind: str, score: int) -> str:
    return path_of(next(x["url"] for x in score_links(touchpoint_id=touchpoint_id, kind=kind) if x["score"] == score))


# --- Unsubscribe -------------------------------------------------------------------------------------


def test_get_on_the_unsubscribe_link_only_shows_the_confirmation_page(browser):
    # Given a customer who consented, and the unsubscribe link of one of their emails
    customer = make_customer(name="Amina Haddad")
    path, _ = unsubscribe_link(customer)
    # When the link is opened (a person, or a mail scanner following links)
    response = browser.get(path)
    # Then the page asks for confirmation, with the masked address, and nothing changed
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="confirm-unsubscribe"' in html and 'dir="ltr"' in html
    assert f"{customer.email[0]}***@example.com" in html
    customer.refresh_from_db()
    assert customer.email_consent == "granted"
    assert not consent_audits(customer).exists()


def test_one_click_post_withdraws_consent_without_login_or_csrf_token_and_is_audited(browser):
    # Given a customer who consented
    customer = make_customer()
    path, tp_id = unsubscribe_link(customer)
    # When the mail client posts the RFC 8058 one-click body, with no cookie and no CSRF token
    response = browser.post(path, ONE_CLICK, content_type=FORM)
    # Then they are unsubscribed, and the page says so
    assert response.status_code == 200
    html = response.content.decode()
    assert "You have been unsubscribed" in html and 'id="confirm-unsubscribe"' not in html
    customer.refresh_from_db()
    assert customer.email_consent == "withdrawn"
    assert customer.email_consent_at is not None
    assert "unsubscribe" in customer.email_consent_source and str(tp_id) in customer.email_consent_source
    # And the consent change is in the audit trail, by the email link
    audit = consent_audits(customer).get()
    assert audit.actor_label == "email link" and audit.customer_id == customer.pk
    assert audit.changes["email_consent"] == ["granted", "withdrawn"]


def test_unsubscribing_twice_is_harmless(browser):
    customer = make_customer()
    path, _ = unsubscribe_link(customer)
    assert browser.post(path, ONE_CLICK, content_type=FORM).status_code == 200
    customer.refresh_from_db()
    first_at = customer.email_consent_at
    # When the same link is posted again (and opened again)
    second = browser.post(path, ONE_CLICK, content_type=FORM)
    again = browser.get(path)
    # Then nothing changes: one audit row, the first date stands, both pages say they are unsubscribed
    assert second.status_code == again.status_code == 200
    assert "You have been unsubscribed" in second.content.decode()
    assert "You have been unsubscribed" in again.content.decode()
    customer.refresh_from_db()
    assert (customer.email_consent, customer.email_consent_at) == ("withdrawn", first_at)
    assert consent_audits(customer).count() == 1


def test_a_tampered_unsubscribe_link_is_404_and_changes_nothing(browser):
    customer = make_customer()
    path, tp_id = unsubscribe_link(customer)
    bad = tampered(unsubscribe_url(customer_id=customer.pk, touchpoint_id=tp_id))
    assert browser.get(bad).status_code == 404
    response = browser.post(bad, ONE_CLICK, content_type=FORM)
    assert response.status_code == 404
    assert "not valid" in response.content.decode()
    customer.refresh_from_db()
    assert customer.email_consent == "granted"
    assert not consent_audits(customer).exists()
    assert path != bad  # the genuine link was indeed altered


def test_an_unsubscribe_link_for_another_customer_cannot_be_made_with_another_key(browser):
    # A link for someone else, signed with another salt (as an attacker could only guess): refused
    victim = make_customer()
    token = signing.dumps([victim.pk, 1], salt=UNSUBSCRIBE_SALT + ".other")
    assert browser.post(f"/t/u/{token}/", ONE_CLICK, content_type=FORM).status_code == 404
    victim.refresh_from_db()
    assert victim.email_consent == "granted"


def test_the_unsubscribe_page_of_an_arabic_customer_is_right_to_left(browser):
    customer = make_customer(name="سارة أحمد", locale="ar")
    path, _ = unsubscribe_link(customer)
    html = browser.get(path).content.decode()
    assert 'dir="rtl"' in html and 'lang="ar"' in html
    assert 'id="confirm-unsubscribe"' in html


def test_after_unsubscribing_a_scheduled_marketing_touchpoint_is_suppressed_as_opted_out(browser, smtp):
    # Given an at-risk customer with an appreciation email scheduled, who unsubscribes from an earlier email
    customer = at_risk(make_customer())
    scheduled = make_touchpoint(customer)
    path = path_of(unsubscribe_url(customer_id=customer.pk, touchpoint_id=scheduled.pk))
    assert browser.post(path, ONE_CLICK, content_type=FORM).status_code == 200
    # When the scheduled touchpoint falls due
    outcome = touchpoint_send(touchpoint_id=scheduled.pk, now=NOW)
    # Then it is suppressed as an opt-out and no message goes out
    assert outcome == "suppressed"
    scheduled.refresh_from_db()
    assert (scheduled.status, scheduled.reason) == ("suppressed", "opted_out")
    assert smtp.messages == []


def test_the_list_unsubscribe_header_of_a_sent_email_asks_on_get_and_unsubscribes_on_the_one_click_post(browser, smtp):
    # Given a marketing email as it left the server, with its RFC 8058 headers
    customer = at_risk(make_customer())
    assert touchpoint_send(touchpoint_id=make_touchpoint(customer).pk, now=NOW) == "sent"
    message = smtp.messages[0]
    assert message["List-Unsubscribe-Post"] == ONE_CLICK
    path = path_of(str(message["List-Unsubscribe"]).strip().strip("<>"))
    # When a scanner opens the URL, nothing changes
    assert browser.get(path).status_code == 200
    customer.refresh_from_db()
    assert customer.email_consent == "granted"
    # When the mail client posts the one-click body there, with no cookie and no CSRF token, it is done
    assert browser.post(path, ONE_CLICK, content_type=FORM).status_code == 200
    customer.refresh_from_db()
    assert customer.email_consent == "withdrawn"


# --- Survey score links ------------------------------------------------------------------------------


def csrf_of(html: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


def answer_token_of(html: str) -> str:
    return re.search(r'name="answer" value="([^"]+)"', html).group(1)


def answer(browser: Client, link: str, score: int | None = None):
    """What a person does: open the link, keep (or change) the chosen score, press the button."""
    page = browser.get(link).content.decode()
    chosen = int(re.search(r'value="(\d+)" id="score-\d+" checked', page).group(1))
    return browser.post(link, {"csrfmiddlewaretoken": csrf_of(page), "score": chosen if score is None else score})


def comment_on(browser: Client, answer_page: str, text: str, token: str | None = None):
    return browser.post(reverse("touchpoints:comment"), {
        "csrfmiddlewaretoken": csrf_of(answer_page), "answer": token or answer_token_of(answer_page), "comment": text})


def detractor_calls(customer: Customer):
    return Touchpoint.objects.filter(customer=customer, channel="call", step__cadence__trigger="nps_detractor")


def test_score_links_cover_the_scale_of_each_survey():
    tp = follow_up_touchpoint()
    assert [x["score"] for x in score_links(touchpoint_id=tp.pk, kind="csat")] == [1, 2, 3, 4, 5]
    assert [x["score"] for x in score_links(touchpoint_id=tp.pk, kind="nps")] == list(range(0, 11))
    urls = [x["url"] for x in score_links(touchpoint_id=tp.pk, kind="csat")]
    assert len(set(urls)) == 5 and all("/t/s/" in u for u in urls)


def test_opening_a_score_link_records_nothing_and_shows_the_clicked_score_chosen(browser):
    # Given a win-back email's NPS links (a mail scanner opens every link, 0 first)
    customer = make_customer()
    tp = follow_up_touchpoint(customer)
    # When the "0" link is opened, as often as a scanner likes
    responses = [browser.get(link_for(tp.pk, "nps", 0)) for _ in range(3)]
    # Then the page asks the question with 0 chosen and a button to send it, and nothing is recorded
    html = responses[0].content.decode()
    assert all(r.status_code == 200 for r in responses)
    assert "How likely are you to recommend" in html and 'id="send-score"' in html
    assert re.findall(r'value="(\d+)" id="score-\d+" checked', html) == ["0"]
    assert len(re.findall(r'type="radio" name="score"', html)) == 11
    assert responses[0]["Cache-Control"].startswith("max-age=0")
    assert not Feedback.objects.exists()
    # And no detractor call is booked, however often the outbox runs
    touchpoints_materialize(now=timezone.now() + dt.timedelta(seconds=1))
    assert not detractor_calls(customer).exists()
    assert not WinbackCase.objects.filter(customer=customer).exists()


def test_posting_the_answer_records_it_once_and_books_the_detractor_call_only_then(browser):
    # Given the NPS links of a customer's email, opened on "3"
    customer = make_customer()
    tp = follow_up_touchpoint(customer)
    link = link_for(tp.pk, "nps", 3)
    # When the person presses the button
    response = answer(browser, link)
    # Then one NPS 3 answer is recorded for them, audited, and the page thanks them and offers a comment
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="answer-recorded"' in html and "3 / 10" in html and 'id="comment-form"' in html
    feedback = Feedback.objects.get()
    assert (feedback.kind, feedback.score, feedback.customer_id, feedback.comment) == ("nps", 3, customer.pk, "")
    assert feedback.external_id == f"touchpoint-{tp.pk}-nps"
    assert AuditEntry.objects.filter(entity="crm.feedback", entity_id=feedback.pk, action="create").exists()
    # And the next outbox run books the detractor call
    touchpoints_materialize(now=timezone.now() + dt.timedelta(seconds=1))
    assert detractor_calls(customer).count() == 1


def test_the_person_may_choose_another_score_on_the_page_before_sending(browser):
    tp = follow_up_touchpoint()
    assert answer(browser, link_for(tp.pk, "csat", 1), score=5).status_code == 200
    assert list(Feedback.objects.values_list("kind", "score")) == [("csat", 5)]


def test_a_score_off_the_scale_is_refused_with_the_form_again(browser):
    tp = follow_up_touchpoint()
    link = link_for(tp.pk, "csat", 4)
    page = browser.get(link).content.decode()
    for bad in ("6", "0", "", "4.5", "-1"):
        response = browser.post(link, {"csrfmiddlewaretoken": csrf_of(page), "score": bad})
        assert response.status_code == 400, bad
        assert "Please choose a score from 1 to 5" in response.content.decode()
    assert not Feedback.objects.exists()


def test_a_post_without_the_csrf_token_records_nothing(browser):
    tp = follow_up_touchpoint()
    link = link_for(tp.pk, "csat", 4)
    browser.get(link)
    assert browser.post(link, {"score": 4}).status_code == 403
    assert not Feedback.objects.exists()


def test_the_first_answer_stands_when_the_link_or_another_score_is_posted_again(browser):
    # Given the survey opened in two tabs, on "4" and on "2", and answered from the first
    tp = follow_up_touchpoint()
    four, two = link_for(tp.pk, "csat", 4), link_for(tp.pk, "csat", 2)
    token = csrf_of(browser.get(four).content.decode())
    browser.get(two)
    assert browser.post(four, {"csrfmiddlewaretoken": token, "score": 4}).status_code == 200
    # When the first form is sent again, the second one sent with "2", and the link opened again
    again = browser.post(four, {"csrfmiddlewaretoken": token, "score": 4})
    other = browser.post(two, {"csrfmiddlewaretoken": token, "score": 2})
    opened = browser.get(two)
    # Then nothing more is recorded, and each page says the answer was already there, with no form
    for response in (again, other, opened):
        html = response.content.decode()
        assert response.status_code == 200
        assert "We already have your answer" in html and "4 / 5" in html
        assert 'id="comment-form"' not in html and 'id="survey-form"' not in html
    assert list(Feedback.objects.values_list("kind", "score")) == [("csat", 4)]


def test_a_comment_needs_the_answer_token_from_the_answer_page(browser):
    # Given an answer, and its page with the answer token
    tp = follow_up_touchpoint()
    link = link_for(tp.pk, "csat", 2)
    answer_page = answer(browser, link).content.decode()
    feedback = Feedback.objects.get()
    # When someone holding only the survey link posts a comment, to the link or with the link's token
    to_link = browser.post(link, {"csrfmiddlewaretoken": csrf_of(answer_page), "comment": "Overwritten!"})
    with_link_token = comment_on(browser, answer_page, "Overwritten!", token=token_of(link))
    # Then nothing is written
    assert to_link.status_code == 200 and "We already have your answer" in to_link.content.decode()
    assert with_link_token.status_code == 404 and "not valid" in with_link_token.content.decode()
    feedback.refresh_from_db()
    assert feedback.comment == ""
    # When the person who answered sends a comment from the answer page
    response = comment_on(browser, answer_page, "  The parcel was late.  ")
    # Then it is saved on their answer, audited, the score unchanged
    assert response.status_code == 200 and "Thanks for your comment" in response.content.decode()
    feedback.refresh_from_db()
    assert (feedback.score, feedback.comment) == (2, "The parcel was late.")
    assert AuditEntry.objects.filter(entity="crm.feedback", entity_id=feedback.pk, action="update").count() == 1
    # And the comment is not overwritten by a second one, even with the same answer token
    second = comment_on(browser, answer_page, "Something else")
    assert second.status_code == 409 and "We already have your comment" in second.content.decode()
    feedback.refresh_from_db()
    assert feedback.comment == "The parcel was late."


def test_an_empty_comment_is_refused_and_the_form_stays(browser):
    tp = follow_up_touchpoint()
    answer_page = answer(browser, link_for(tp.pk, "csat", 3)).content.decode()
    response = comment_on(browser, answer_page, "   ")
    assert response.status_code == 400
    html = response.content.decode()
    assert "Please write a comment" in html and answer_token_of(html) == answer_token_of(answer_page)
    assert Feedback.objects.get().comment == ""


def test_an_expired_or_tampered_answer_token_gets_a_clear_page(browser, monkeypatch):
    tp = follow_up_touchpoint()
    answer_page = answer(browser, link_for(tp.pk, "csat", 3)).content.decode()
    feedback = Feedback.objects.get()
    # An answer token issued longer ago than it lives
    issued_at = int(time.time() - ANSWER_TOKEN_MAX_AGE.total_seconds() - 60)
    monkeypatch.setattr(signing.TimestampSigner, "timestamp", lambda self: signing.b62_encode(issued_at))
    old = answer_token(feedback_id=feedback.pk)
    monkeypatch.undo()
    expired = comment_on(browser, answer_page, "Late comment", token=old)
    assert expired.status_code == 410 and "This page has expired" in expired.content.decode()
    # An answer token for another answer, altered by hand
    token = answer_token_of(answer_page)
    forged = comment_on(browser, answer_page, "Forged", token=token[:-1] + ("A" if token[-1] != "A" else "B"))
    assert forged.status_code == 404 and "This page is not valid" in forged.content.decode()
    feedback.refresh_from_db()
    assert feedback.comment == ""


def test_the_nps_answer_of_the_same_touchpoint_is_a_separate_answer(browser):
    tp = follow_up_touchpoint()
    answer(browser, link_for(tp.pk, "csat", 5))
    response = answer(browser, link_for(tp.pk, "nps", 9))
    assert response.status_code == 200 and "9 / 10" in response.content.decode()
    assert sorted(Feedback.objects.values_list("external_id", "kind", "score")) == [
        (f"touchpoint-{tp.pk}-csat", "csat", 5), (f"touchpoint-{tp.pk}-nps", "nps", 9)]


def test_a_tampered_score_link_is_404_and_records_nothing(browser):
    tp = follow_up_touchpoint()
    url = next(x["url"] for x in score_links(touchpoint_id=tp.pk, kind="csat") if x["score"] == 4)
    response = browser.get(tampered(url))
    assert response.status_code == 404 and "not valid" in response.content.decode()
    page = browser.get(link_for(tp.pk, "csat", 4)).content.decode()
    assert browser.post(tampered(url), {"csrfmiddlewaretoken": csrf_of(page), "score": 4}).status_code == 404
    assert not Feedback.objects.exists()


def test_a_score_outside_the_scale_cannot_be_forged(browser):
    tp = follow_up_touchpoint()
    # Signed with another salt (the attacker does not have our key for this purpose): refused
    forged = signing.dumps([tp.pk, "csat", 6], salt="touchpoints.unsubscribe")
    assert browser.get(f"/t/s/{forged}/").status_code == 404
    # And even a correctly signed token with a score outside the scale or an unknown kind is refused
    for payload in ([tp.pk, "csat", 6], [tp.pk, "csat", 0], [tp.pk, "ces", 3], [tp.pk + 999, "csat", 4]):
        token = signing.dumps(payload, salt=SCORE_SALT)
        assert browser.get(f"/t/s/{token}/").status_code == 404, payload
    assert not Feedback.objects.exists()


def test_a_double_post_that_races_the_first_answer_shows_the_first_answer(browser, monkeypatch):
    """Two posts at once: this one finds no answer yet, then the other commits its answer (5) before this
    one inserts. The unique external_id refuses the second row: this one answers "already there"."""
    import touchpoints.services.links as links

    tp = follow_up_touchpoint()
    other_post = token_of(link_for(tp.pk, "csat", 5))
    find = links.survey_answer_find

    def racing_find(*, link):
        found = find(link=link)  # the check: nothing yet
        monkeypatch.setattr(links, "survey_answer_find", find)
        links.feedback_record_from_link(token=other_post)  # the other post commits its answer
        return found

    page = browser.get(link_for(tp.pk, "csat", 1)).content.decode()
    monkeypatch.setattr(links, "survey_answer_find", racing_find)
    response = browser.post(link_for(tp.pk, "csat", 1), {"csrfmiddlewaretoken": csrf_of(page), "score": 1})
    assert response.status_code == 200
    assert "We already have your answer" in response.content.decode()
    assert list(Feedback.objects.values_list("score", flat=True)) == [5]


def test_an_arabic_customers_survey_page_is_right_to_left_and_in_arabic(browser):
    customer = make_customer(locale="ar")
    tp = follow_up_touchpoint(customer)
    html = browser.get(link_for(tp.pk, "csat", 4)).content.decode()
    assert 'dir="rtl"' in html and 'lang="ar"' in html
    assert "ما مدى رضاك عن طلبك؟" in html and "أرسل إجابتي" in html
    assert '<ul class="scale" dir="ltr">' in html  # the scale reads 1 to 5 as in the email


# --- The links in the email --------------------------------------------------------------------------


def test_the_order_follow_up_email_carries_five_csat_links_that_record_the_answer(browser, smtp):
    # Given a consenting customer and the default order follow-up, due now
    customer = make_customer(name="Amina Haddad")
    step = CadenceStep.objects.get(cadence__name="Order follow-up")
    assert step.template == "order_follow_up"
    tp = make_touchpoint(customer, step)
    # When it is sent
    assert touchpoint_send(touchpoint_id=tp.pk, now=NOW) == "sent"
    # Then both parts carry the same five score links, one per CSAT score, for this touchpoint
    message = smtp.messages[0]
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    in_text = dict(re.findall(r"^([1-5]): (http\S*/t/s/\S+)", text, flags=re.M))
    in_html = set(re.findall(r'href="(http[^"]*/t/s/[^"]+)"', html))
    assert sorted(in_text) == ["1", "2", "3", "4", "5"]
    assert set(in_text.values()) == in_html
    for score, url in in_text.items():
        assert signing.loads(token_of(path_of(url)), salt=SCORE_SALT) == [tp.pk, "csat", int(score)]
    # And following "4" from the message and pressing the button records the answer
    response = answer(browser, path_of(in_text["4"]))
    assert response.status_code == 200
    feedback = Feedback.objects.get()
    assert (feedback.customer_id, feedback.kind, feedback.score) == (customer.pk, "csat", 4)
    assert feedback.external_id == f"touchpoint-{tp.pk}-csat"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_posts_of_one_survey_record_one_answer(live_server):
    """Eight people (or tabs) press the button at the same instant, each with another score: the database's
    unique constraint lets one answer in; every other post shows it, none fails."""
    customer = make_customer()
    tp = follow_up_touchpoint(customer)
    n = 8
    start = threading.Barrier(n)
    pages: list[str] = []
    lock = threading.Lock()

    def person(score: int) -> None:
        url = live_server.url + link_for(tp.pk, "nps", score)
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
        with opener.open(url, timeout=60) as response:
            token = csrf_of(response.read().decode())
        body = urllib.parse.urlencode({"csrfmiddlewaretoken": token, "score": score}).encode()
        request = urllib.request.Request(url, data=body, method="POST", headers={"Referer": url})
        start.wait()
        with opener.open(request, timeout=60) as response:
            page = response.read().decode()
        with lock:
            pages.append(page)

    threads = [threading.Thread(target=person, args=(score,)) for score in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(pages) == n
    feedback = Feedback.objects.get()
    assert sum('id="answer-recorded"' in p for p in pages) == 1
    assert sum('id="already-answered"' in p for p in pages) == n - 1
    assert all(f"{feedback.score} / 10" in p for p in pages)
    # And the one detractor answer books one call
    touchpoints_materialize(now=timezone.now() + dt.timedelta(seconds=1))
    assert detractor_calls(customer).count() == (1 if feedback.score <= 6 else 0)
