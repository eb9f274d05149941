import datetime as dt

import pytest

from crm.models import AuditEntry, Contact
from tests.touchpoints.conftest import NOW, make_customer, make_step, make_touchpoint
from touchpoints.models import Touchpoint, TouchpointSettings
from touchpoints.services.sending import touchpoint_send

pytestmark = pytest.mark.django_db


def at_risk(customer):
    customer.status = "at_risk"
    customer.save(update_fields=["status"])
    return customer


def test_an_email_goes_out_through_smtp_with_both_parts_headers_and_a_timeline_contact(smtp):
    # Given an at-risk customer who consented, and an appreciation touchpoint that is due
    customer = at_risk(make_customer(name="Amina Haddad"))
    tp = make_touchpoint(customer)
    # When it is sent
    assert touchpoint_send(touchpoint_id=tp.pk, now=NOW) == "sent"
    # Then one message arrived, with a plain-text and an HTML part, and the one-click unsubscribe headers
    assert len(smtp.messages) == 1
    message = smtp.messages[0]
    assert message["To"] == customer.email
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe_header = str(message["List-Unsubscribe"]).strip()  # long headers may be folded
    assert unsubscribe_header.startswith("<http") and unsubscribe_header.endswith(">") and "/t/u/" in unsubscribe_header
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "Amina" in text and "Amina" in html
    unsubscribe = unsubscribe_header.strip("<>")
    assert unsubscribe in text and unsubscribe in html  # the visible link too
    assert 'dir="ltr"' in html
    # And the touchpoint is sent, with the Message-ID and a Contact on the customer's timeline
    tp.refresh_from_db()
    assert tp.status == "sent" and tp.attempts == 1 and tp.provider_message_id == message["Message-ID"]
    contact = tp.contact
    assert (contact.channel, contact.direction, contact.outcome) == ("email", "outbound", "sent")
    assert AuditEntry.objects.filter(entity="crm.contact", entity_id=contact.pk).exists()


def test_an_arabic_customer_gets_the_right_to_left_template(smtp):
    customer = at_risk(make_customer(name="سارة أحمد", locale="ar"))
    tp = make_touchpoint(customer)
    assert touchpoint_send(touchpoint_id=tp.pk, now=NOW) == "sent"
    html = smtp.messages[0].get_body(("html",)).get_content()
    assert 'dir="rtl"' in html and 'lang="ar"' in html
    assert "سارة" in html


def test_an_unknown_locale_falls_back_to_english(smtp):
    customer = at_risk(make_customer(locale="fr-CA"))
    assert touchpoint_send(touchpoint_id=make_touchpoint(customer).pk, now=NOW) == "sent"
    assert 'lang="en"' in smtp.messages[0].get_body(("html",)).get_content()


def test_a_transactional_thank_you_has_no_unsubscribe_and_needs_no_consent(smtp):
    # Given a customer with no marketing consent and an order thank-you
    customer = make_customer(email_consent="unknown")
    step = make_step(trigger="order", marketing=False, template="thank_you")
    tp = make_touchpoint(customer, step)
    # When it is sent
    assert touchpoint_send(touchpoint_id=tp.pk, now=NOW) == "sent"
    # Then it goes out, without the marketing headers
    assert smtp.messages[0]["List-Unsubscribe"] is None


def test_a_win_back_offer_carries_a_unique_coupon_kept_across_attempts(smtp):
    from winback.models import Offer

    customer = make_customer()
    customer.status = "lapsed"
    customer.save(update_fields=["status"])
    offer = Offer.objects.get(code_prefix="BACK10")
    tp = make_touchpoint(customer, make_step(trigger="lapsed", template="winback_offer", offer=offer))
    assert touchpoint_send(touchpoint_id=tp.pk, now=NOW) == "sent"
    tp.refresh_from_db()
    assert tp.coupon.code.startswith("BACK10-") and tp.coupon.customer == customer
    assert tp.coupon.code in smtp.messages[0].get_body(("plain",)).get_content()


def test_ten_concurrent_sends_of_one_touchpoint_send_one_email(smtp, transactional_db):
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    customer = at_risk(make_customer())
    tp = make_touchpoint(customer)

    def send(_):
        try:
            return touchpoint_send(touchpoint_id=tp.pk, now=NOW)
        finally:
            connection.close()

    with ThreadPoolExecutor(10) as pool:
        outcomes = list(pool.map(send, range(10)))
    assert sorted(outcomes) == ["sent"] + ["skipped"] * 9
    assert len(smtp.messages) == 1
    assert Contact.objects.filter(customer=customer).count() == 1


def test_a_sent_touchpoint_is_never_sent_again(smtp):
    customer = at_risk(make_customer())
    tp = make_touchpoint(customer)
    assert touchpoint_send(touchpoint_id=tp.pk, now=NOW) == "sent"
    assert touchpoint_send(touchpoint_id=tp.pk, now=NOW + dt.timedelta(days=1)) == "skipped"
    assert len(smtp.messages) == 1


def test_a_temporary_smtp_error_retries_with_doubling_waits_up_to_the_cap_then_fails_after_the_window(smtp, settings):
    # Given a two-hour retry window, waits capped at 30 minutes, and a server that keeps refusing the mailbox
    settings.TOUCHPOINT_RETRY_WINDOW_HOURS, settings.TOUCHPOINT_RETRY_MAX_DELAY_SECONDS = 2, 1800
    TouchpointSettings.objects.update_or_create(pk=1, defaults={"retry_base_seconds": 60})
    customer = at_risk(make_customer())
    tp = make_touchpoint(customer)
    smtp.reply_to_rcpt = ["451 4.2.0 Mailbox busy, try again later"] * 100
    # First attempt: temporary error, retried a minute later; it keeps its due time
    assert touchpoint_send(touchpoint_id=tp.pk, now=NOW) == "retry"
    tp.refresh_from_db()
    assert (tp.status, tp.attempts, tp.reason, tp.due_at) == ("scheduled", 1, "temporary_error", NOW)
    assert "451" in tp.last_error and tp.retry_since == NOW and tp.retry_at == NOW + dt.timedelta(seconds=60)
    # Not yet time for the next attempt: nothing happens
    assert touchpoint_send(touchpoint_id=tp.pk, now=NOW + dt.timedelta(seconds=59)) == "skipped"
    # When each next attempt fails too
    waits = []
    while True:
        before = tp.retry_at
        outcome = touchpoint_send(touchpoint_id=tp.pk, now=before)
        tp.refresh_from_db()
        if outcome != "retry":
            break
        waits.append(int((tp.retry_at - before).total_seconds()))
    # Then the waits doubled up to the cap, the last attempt came at the end of the window, and it failed
    assert waits == [120, 240, 480, 960, 1800, 1800, 1740]
    assert outcome == "failed" and tp.status == "failed" and tp.attempts == 9
    assert tp.last_error.startswith("Gave up: temporary errors for 2 hours (since 2026-03-10 12:00 UTC, 9 attempts)")
    assert "451" in tp.last_error
    assert smtp.messages == [] and not Contact.objects.filter(customer=customer).exists()


def test_a_permanent_smtp_error_fails_at_once(smtp):
    customer = at_risk(make_customer())
    tp = make_touchpoint(customer)
    smtp.reply_to_rcpt = ["550 5.1.1 No such user"]
    assert touchpoint_send(touchpoint_id=tp.pk, now=NOW) == "failed"
    tp.refresh_from_db()
    assert tp.status == "failed" and "550" in tp.last_error and tp.attempts == 1


def test_the_admin_retry_action_puts_a_failed_touchpoint_back_and_it_is_sent(smtp, client, manager):
    customer = at_risk(make_customer())
    tp = make_touchpoint(customer)
    smtp.reply_to_rcpt = ["550 5.1.1 No such user"]
    touchpoint_send(touchpoint_id=tp.pk, now=NOW)
    client.force_login(manager)
    response = client.post("/admin/touchpoints/touchpoint/", {"action": "retry", "_selected_action": [tp.pk]}, follow=True)
    assert "1 touchpoint back in the outbox" in response.content.decode()
    tp.refresh_from_db()
    assert tp.status == "scheduled" and tp.attempts == 0
    daytime = (tp.due_at + dt.timedelta(days=1)).replace(hour=12)
    assert touchpoint_send(touchpoint_id=tp.pk, now=daytime) == "sent"
    assert len(smtp.messages) == 1


def test_a_send_recorded_without_its_contact_gets_it_from_the_repair_pass(smtp):
    from touchpoints.services.dispatch import touchpoints_repair

    # Given a touchpoint recorded as sent whose worker died before writing the timeline contact
    customer = at_risk(make_customer())
    tp = make_touchpoint(customer)
    Touchpoint.objects.filter(pk=tp.pk).update(status="sent", sent_at=NOW, subject="Thank you")
    # When the tick's repair pass runs (not before a minute has passed: the worker may still be on it)
    assert touchpoints_repair(now=NOW + dt.timedelta(seconds=30)) == 0
    assert touchpoints_repair(now=NOW + dt.timedelta(minutes=2)) == 1
    # Then the contact exists, once, dated when the message went out
    tp.refresh_from_db()
    assert tp.contact.occurred_at == NOW and tp.contact.channel == "email"
    assert touchpoints_repair(now=NOW + dt.timedelta(minutes=3)) == 0
    assert Contact.objects.filter(customer=customer).count() == 1
