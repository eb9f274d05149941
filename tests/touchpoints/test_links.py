import re

import pytest
from django.conf import settings
from django.core import signing
from django.test import Client

from crm.models import AuditEntry, Customer, Feedback
from tests.touchpoints.conftest import NOW, make_customer, make_step, make_touchpoint
from touchpoints.models import CadenceStep
from touchpoints.services.links import SCORE_SALT, UNSUBSCRIBE_SALT, score_links, unsubscribe_url
from touchpoints.services.sending import touchpoint_send

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


# --- Survey score links ------------------------------------------------------------------------------


def test_score_links_cover_the_scale_of_each_survey():
    tp = follow_up_touchpoint()
    assert [x["score"] for x in score_links(touchpoint_id=tp.pk, kind="csat")] == [1, 2, 3, 4, 5]
    assert [x["score"] for x in score_links(touchpoint_id=tp.pk, kind="nps")] == list(range(0, 11))
    urls = [x["url"] for x in score_links(touchpoint_id=tp.pk, kind="csat")]
    assert len(set(urls)) == 5 and all("/t/s/" in u for u in urls)


def test_clicking_a_csat_score_records_one_answer_for_the_touchpoints_customer(browser):
    # Given the order follow-up of a customer
    customer = make_customer()
    tp = follow_up_touchpoint(customer)
    # When they click "4"
    response = browser.get(link_for(tp.pk, "csat", 4))
    # Then one CSAT 4 answer is recorded for them, and the page thanks them with the score
    assert response.status_code == 200
    html = response.content.decode()
    assert "We have recorded your score" in html and "4 / 5" in html
    feedback = Feedback.objects.get()
    assert (feedback.kind, feedback.score, feedback.customer_id) == ("csat", 4, customer.pk)
    assert feedback.external_id == f"touchpoint-{tp.pk}-csat"
    assert AuditEntry.objects.filter(entity="crm.feedback", entity_id=feedback.pk, action="create").exists()


def test_the_first_score_stands_when_the_link_or_another_score_is_clicked_again(browser):
    tp = follow_up_touchpoint()
    assert browser.get(link_for(tp.pk, "csat", 4)).status_code == 200
    # When the same link is clicked again, and then "2" of the same email
    again = browser.get(link_for(tp.pk, "csat", 4))
    other = browser.get(link_for(tp.pk, "csat", 2))
    # Then nothing more is recorded and both pages say the answer was already there
    for response in (again, other):
        assert response.status_code == 200
        assert "We already have your answer" in response.content.decode()
    assert list(Feedback.objects.values_list("kind", "score")) == [("csat", 4)]


def test_a_comment_posted_from_the_thank_you_page_is_saved_on_the_answer(browser):
    tp = follow_up_touchpoint()
    link = link_for(tp.pk, "csat", 2)
    browser.get(link)
    # When the customer posts a comment from the page (no CSRF token: the form has none)
    response = browser.post(link, {"comment": "  The parcel was late.  "})
    # Then it is saved on the same answer, the score unchanged
    assert response.status_code == 200
    assert "Thanks for your comment" in response.content.decode()
    feedback = Feedback.objects.get()
    assert (feedback.score, feedback.comment) == (2, "The parcel was late.")
    assert AuditEntry.objects.filter(entity="crm.feedback", entity_id=feedback.pk, action="update").exists()


def test_the_nps_answer_of_the_same_touchpoint_is_a_separate_answer(browser):
    tp = follow_up_touchpoint()
    browser.get(link_for(tp.pk, "csat", 5))
    response = browser.get(link_for(tp.pk, "nps", 9))
    assert response.status_code == 200 and "9 / 10" in response.content.decode()
    assert sorted(Feedback.objects.values_list("external_id", "kind", "score")) == [
        (f"touchpoint-{tp.pk}-csat", "csat", 5), (f"touchpoint-{tp.pk}-nps", "nps", 9)]


def test_a_tampered_score_link_is_404_and_records_nothing(browser):
    tp = follow_up_touchpoint()
    url = next(x["url"] for x in score_links(touchpoint_id=tp.pk, kind="csat") if x["score"] == 4)
    response = browser.get(tampered(url))
    assert response.status_code == 404 and "not valid" in response.content.decode()
    assert browser.post(tampered(url), {"comment": "hello"}).status_code == 404
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


def test_a_double_click_that_races_the_first_answer_shows_the_first_answer(browser, monkeypatch):
    """Two clicks at once: this one finds no answer yet, then the other click commits its answer (5)
    before this one inserts. This one must answer "already recorded", not fail."""
    from types import SimpleNamespace

    import touchpoints.services.links as links

    tp = follow_up_touchpoint()
    other_click = token_of(link_for(tp.pk, "csat", 5))

    class RacingManager:
        raced = False

        def filter(self, **lookups):
            if self.raced:
                return Feedback.objects.filter(**lookups)
            self.raced = True
            found = Feedback.objects.filter(**lookups).first()  # the check: nothing yet
            links.feedback_record_from_link(token=other_click)  # the other click commits its answer
            return SimpleNamespace(first=lambda: found)

        def get(self, **lookups):
            return Feedback.objects.get(**lookups)

    monkeypatch.setattr(links, "Feedback", SimpleNamespace(objects=RacingManager()))
    response = browser.get(link_for(tp.pk, "csat", 1))
    assert response.status_code == 200
    assert "We already have your answer" in response.content.decode()
    assert list(Feedback.objects.values_list("score", flat=True)) == [5]


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
    # And following "4" from the message records the answer
    response = browser.get(path_of(in_text["4"]))
    assert response.status_code == 200
    feedback = Feedback.objects.get()
    assert (feedback.customer_id, feedback.kind, feedback.score) == (customer.pk, "csat", 4)
    assert feedback.external_id == f"touchpoint-{tp.pk}-csat"
