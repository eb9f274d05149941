"""The cadence screens in the admin: results per step, a test send to the manager, a preview as a chosen
customer, and only the settings the trigger reads."""

import datetime as dt
import re
from urllib.parse import urlsplit

import pytest
from django.contrib.messages import get_messages
from django.core import mail

from crm.models import Contact, SuppressionEntry
from tests.factories import (
    CadenceFactory, CadenceStepFactory, CustomerFactory, DormancyPolicyFactory, FeedbackFactory,
    LifecycleEventFactory, OfferFactory, TouchpointFactory,
)
from tests.touchpoints.conftest import NOW, make_customer, make_touchpoint
from touchpoints.models import Cadence, Touchpoint, TouchpointSettings
from touchpoints.selectors import cadence_results
from touchpoints.services.links import BadLink, unsubscribe_read
from touchpoints.services.sending import touchpoint_limits, touchpoint_send
from winback.models import Coupon

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 2, 2, 10, 0, tzinfo=dt.timezone.utc)
DAY = dt.timedelta(days=1)


def _tp(step, customer, status, *, due_at=T0, reason=""):
    return TouchpointFactory(step=step, customer=customer, status=status, reason=reason, due_at=due_at, anchor_at=due_at,
                             sent_at=due_at if status == Touchpoint.Status.SENT else None)


def _reactivated(customer, at):
    return LifecycleEventFactory(customer=customer, kind="reactivated", occurred_at=at)


@pytest.fixture
def history():
    """Two steps of a win-back cadence and what happened to them (the numbers are worked by hand below)."""
    DormancyPolicyFactory(attribution_window_days=30)
    cadence = CadenceFactory(trigger="lapsed", marketing=True)
    miss_you = CadenceStepFactory(cadence=cadence, position=1, template="winback_miss_you")  # asks the NPS
    last = CadenceStepFactory(cadence=cadence, position=2, offset_days=7, template="winback_last_chance")  # no survey
    a, b, c, d, e, f = (CustomerFactory() for _ in range(6))
    # Step 1: sent to a and b; suppressed for c and e (no consent) and d (cap); f's was cancelled, and one
    # still waits: neither is suppressed nor sent.
    tp_a = _tp(miss_you, a, "sent")
    _tp(miss_you, b, "sent")
    _tp(miss_you, c, "suppressed", reason="no_consent")
    _tp(miss_you, e, "suppressed", reason="no_consent")
    _tp(miss_you, d, "suppressed", reason="frequency_cap")
    _tp(miss_you, f, "cancelled", reason="no_longer_applies")
    _tp(miss_you, f, "scheduled", due_at=T0 + 40 * DAY)
    # a answered the NPS of that message; b answered an NPS of nothing this cadence sent.
    FeedbackFactory(customer=a, kind="nps", score=3, external_id=f"touchpoint-{tp_a.pk}-nps")
    FeedbackFactory(customer=b, kind="nps", score=9, external_id="survey-elsewhere")
    # Step 2: sent to a and c a week later, to a again two weeks later (a recurring message: one customer).
    _tp(last, a, "sent", due_at=T0 + 7 * DAY)
    _tp(last, a, "sent", due_at=T0 + 14 * DAY)
    _tp(last, c, "sent", due_at=T0 + 7 * DAY)
    # a reactivates 10 days after step 1 (3 after step 2); b 31 days after (outside 30 days); c's reactivation
    # came before step 2 reached them (not credited); d lapses (not a reactivation); a's other reactivation
    # exactly at the end of step 1's window does not count again.
    _reactivated(a, T0 + 10 * DAY)
    _reactivated(b, T0 + 31 * DAY)
    _reactivated(c, T0 + 5 * DAY)
    LifecycleEventFactory(customer=d, kind="lapsed", occurred_at=T0 + 3 * DAY)
    # Another cadence's touchpoint to a: not this cadence's.
    _tp(CadenceStepFactory(template="winback_miss_you"), a, "sent")
    return {"cadence": cadence, "steps": (miss_you, last), "customers": (a, b, c, d, e, f)}


def test_the_results_per_step_equal_the_hand_worked_numbers(history):
    # Given the history, when the cadence's results are read
    results = cadence_results(cadence=history["cadence"])
    one, two = results.steps
    # Then step 1: 2 sent, 3 suppressed (2 without consent, 1 capped), 1 answered, 2 customers touched of
    # whom 1 (a) reactivated within the 30 days
    assert (one.sent, one.suppressed, one.answered, one.touched, one.reactivated) == (2, 3, 1, 2, 1)
    assert [(reason, n) for reason, _label, n in one.suppressed_by_reason] == [("no_consent", 2), ("frequency_cap", 1)]
    assert one.answerable and one.reactivated_percent == 50
    # And step 2: 3 sent to 2 customers, a reactivated 3 days after; c's reactivation came before the send
    assert (two.sent, two.suppressed, two.answered, two.touched, two.reactivated) == (3, 0, 0, 2, 1)
    assert not two.answerable and results.window_days == 30


def test_the_window_is_the_policys_attribution_window(history):
    # Given a policy that credits a contact for 40 days
    DormancyPolicyFactory(attribution_window_days=40)
    # Then b's reactivation 31 days after step 1 counts too
    one = cadence_results(cadence=history["cadence"]).steps[0]
    assert one.reactivated == 2 and one.touched == 2


def test_the_window_is_half_open(history):
    # Given c, touched by step 2 at T0 + 7 days, reactivating exactly 30 days later (the window's end)
    _reactivated(history["customers"][2], T0 + 37 * DAY)
    # Then it is not within the window; a second later would have been outside too, a second earlier inside
    assert cadence_results(cadence=history["cadence"]).steps[1].reactivated == 1
    _reactivated(history["customers"][2], T0 + 37 * DAY - dt.timedelta(seconds=1))
    assert cadence_results(cadence=history["cadence"]).steps[1].reactivated == 2


def test_a_period_counts_only_the_touchpoints_due_in_it(history):
    # Given the period [T0 + 1 day, T0 + 10 days): only step 2's first week
    one, two = cadence_results(cadence=history["cadence"], start=T0 + DAY, end=T0 + 10 * DAY).steps
    assert (one.sent, one.suppressed) == (0, 0)
    assert (two.sent, two.touched, two.reactivated) == (2, 2, 1)


def test_each_measure_is_one_query_whatever_the_number_of_touchpoints(history, django_assert_max_num_queries):
    # Given many more sends of step 1
    step = history["steps"][0]
    for _ in range(30):
        _tp(step, CustomerFactory(), "sent")
    # Then the results still take a fixed handful of queries (policy, 4 measures, the steps)
    with django_assert_max_num_queries(6):
        assert cadence_results(cadence=history["cadence"]).steps[0].sent == 32


def test_the_cadence_page_shows_the_results_and_how_they_are_computed(client, manager, history):
    client.force_login(manager)
    cadence, (one, _two) = history["cadence"], history["steps"]
    page = client.get(f"/admin/touchpoints/cadence/{cadence.pk}/change/").content.decode()
    row = re.search(rf'<tr id="results-step-{one.pk}".*?</tr>', page, re.S).group(0)
    assert '<td data-label="Sent" class="results-sent">2</td>' in row
    assert 'data-reason="no_consent">No marketing consent: <span class="results-reason-count">2</span>' in row
    assert 'class="results-reactivated">1 <span class="results-share">(50.0%)</span>' in row
    assert "Reactivated within 30 days" in page and "attribution window" in page and "docs/metrics.md" in page
    # And a period the manager chooses; a reversed one is refused with a reason and shows all time
    page = client.get(f"/admin/touchpoints/cadence/{cadence.pk}/change/?results_from=2026-02-03&results_to=2026-02-12")
    row = re.search(rf'<tr id="results-step-{one.pk}".*?</tr>', page.content.decode(), re.S).group(0)
    assert '<td data-label="Sent" class="results-sent">0</td>' in row
    page = client.get(f"/admin/touchpoints/cadence/{cadence.pk}/change/?results_from=2026-03-01&results_to=2026-02-01")
    assert "The end of the period is before its start." in page.content.decode()
    assert "All touchpoints of the cadence" in page.content.decode()


# --- The test send ---------------------------------------------------------------------------------------------

def test_a_test_send_goes_to_the_manager_only_and_leaves_no_trace(client, manager, smtp):
    # Given an Arabic-speaking customer, a frequency cap of one message, and the win-back offer step
    TouchpointSettings.objects.filter(pk=1).update(cap_count=1)
    touchpoint_limits(fresh=True)
    customer = make_customer(name="ليلى حسن", locale="ar", email="layla@example.com")
    customer.status = "lapsed"
    customer.save(update_fields=["status"])
    step = CadenceStepFactory(cadence=CadenceFactory(trigger="lapsed", marketing=True), template="winback_offer",
                              offer=OfferFactory(code_prefix="TRY"))
    before = (Touchpoint.objects.count(), Contact.objects.count(), Coupon.objects.count(), SuppressionEntry.objects.count())
    client.force_login(manager)
    # When the manager sends a test of the step as that customer
    response = client.post(f"/admin/touchpoints/cadence/step/{step.pk}/test-send/", {"customer": customer.email})
    # Then one message arrived, through a real SMTP conversation, to the manager's address only, marked a test
    assert response.status_code == 302
    assert len(smtp.messages) == 1
    message = smtp.messages[0]
    assert message["To"] == manager.email and "layla@example.com" not in str(message)
    subject = str(message["Subject"]).strip()  # a long encoded header is folded onto its next line
    assert subject.startswith("[TEST] هدية")  # her language
    assert message["X-Winback-Test-Send"] == f"cadence-step-{step.pk}"
    text = message.get_body(("plain",)).get_content()
    assert "ليلى" in text and "TRY-SAMPLE42" in text  # her name, the coupon placeholder
    # And nothing about the customer changed: no touchpoint, contact, coupon or suppression
    assert (Touchpoint.objects.count(), Contact.objects.count(), Coupon.objects.count(),
            SuppressionEntry.objects.count()) == before
    customer.refresh_from_db()
    assert customer.email_consent == "granted" and customer.suppressed_at is None
    # And the real send still goes (the cap of one was not used up by the test)
    real = make_touchpoint(customer, step, anchor_at=NOW - dt.timedelta(hours=1))
    assert touchpoint_send(touchpoint_id=real.pk, now=NOW) == "sent"
    assert [m["To"] for m in smtp.messages[1:]] == ["layla@example.com"]
    assert "[TEST]" not in str(smtp.messages[1]["Subject"])


def test_a_manager_without_an_email_address_gets_a_clear_error(client, manager, smtp):
    manager.email = ""
    manager.save(update_fields=["email"])
    step = CadenceStepFactory(template="thank_you")
    client.force_login(manager)
    response = client.post(f"/admin/touchpoints/cadence/step/{step.pk}/test-send/", {"customer": ""}, follow=True)
    texts = [str(m) for m in get_messages(response.wsgi_request)] or [response.content.decode()]
    assert any("no email address" in t for t in texts), texts
    assert smtp.messages == []


def test_a_test_send_for_an_unknown_customer_sends_nothing(client, manager, smtp):
    step = CadenceStepFactory(template="thank_you")
    client.force_login(manager)
    response = client.post(f"/admin/touchpoints/cadence/step/{step.pk}/test-send/", {"customer": "nobody@example.com"},
                           follow=True)
    assert "No customer has the id, external id or email address" in response.content.decode()
    assert smtp.messages == []


def test_a_test_send_of_an_sms_step_arrives_by_email_and_a_call_step_has_nothing_to_send(client, manager):
    sms = CadenceStepFactory(channel="sms", template="appreciation")
    call = CadenceStepFactory(channel="call", template="")
    client.force_login(manager)
    client.post(f"/admin/touchpoints/cadence/step/{sms.pk}/test-send/", {})
    assert [m.to for m in mail.outbox] == [[manager.email]] and mail.outbox[0].subject.startswith("[TEST] SMS:")
    response = client.post(f"/admin/touchpoints/cadence/step/{call.pk}/test-send/", {}, follow=True)
    assert "A call step has no message to send" in response.content.decode() and len(mail.outbox) == 1


def test_only_managers_may_test_send_and_only_by_post(client, manager, agent):
    step = CadenceStepFactory(template="thank_you")
    url = f"/admin/touchpoints/cadence/step/{step.pk}/test-send/"
    client.force_login(agent)
    assert urlsplit(client.post(url, {})["Location"]).path == "/admin/login/"
    client.force_login(manager)
    assert client.get(url).status_code == 405
    assert mail.outbox == []


def test_the_test_send_returns_only_to_a_page_of_this_site(client, manager):
    step = CadenceStepFactory(template="thank_you")
    client.force_login(manager)
    response = client.post(f"/admin/touchpoints/cadence/step/{step.pk}/test-send/", {"next": "https://evil.example/"})
    assert response["Location"] == f"/admin/touchpoints/cadence/step/{step.pk}/preview/"


# --- The preview as a chosen customer ---------------------------------------------------------------------------

def test_the_preview_renders_as_the_chosen_customer_in_their_language(client, manager):
    # Given an Arabic-speaking customer and the win-back "we miss you" step
    customer = CustomerFactory(name="ليلى حسن", locale="ar")
    step = CadenceStepFactory(cadence=CadenceFactory(trigger="lapsed", marketing=True), template="winback_miss_you")
    client.force_login(manager)
    # When the manager previews the step as that customer (by email address, any case)
    page = client.get(f"/admin/touchpoints/cadence/step/{step.pk}/preview/", {"customer": customer.email.upper()})
    # Then it is rendered in Arabic, with her first name
    assert page.status_code == 200
    assert page.context["rendered"].locale == "ar"
    assert page.context["rendered"].subject == "اشتقنا إليك يا ليلى"
    html_url = f"/admin/touchpoints/cadence/step/{step.pk}/preview/html/?locale=en&customer={customer.pk}"
    assert html_url.replace("&", "&amp;") in page.content.decode()
    html = client.get(html_url).content.decode()
    assert 'dir="rtl"' in html and "ليلى" in html
    # And its links lead nowhere: the unsubscribe link is not hers
    token = re.search(r"/t/u/([^/\"]+)/", html).group(1)
    with pytest.raises(BadLink):
        unsubscribe_read(token=token)


def test_the_preview_chooser_is_bounded_and_says_what_it_found(client, manager):
    step = CadenceStepFactory(template="thank_you")
    twins = [CustomerFactory(email="same@example.com") for _ in range(2)]
    client.force_login(manager)
    url = f"/admin/touchpoints/cadence/step/{step.pk}/preview/"
    # Several customers share the address: the page lists them to choose from, and renders the sample
    page = client.get(url, {"customer": "same@example.com"})
    assert [c.pk for c in page.context["choices"]] == [c.pk for c in twins] and page.context["chosen_customer"] is None
    # Nobody: a clear message, and the sample customer
    page = client.get(url, {"customer": "CUST-NOPE"}, follow=True)
    assert "No customer has the id, external id or email address" in page.content.decode()
    # Too long a query: refused with the bound
    page = client.get(url, {"customer": "x" * 255}, follow=True)
    assert "at most 254 characters" in page.content.decode() and page.context["chosen_customer"] is None
    # By external id
    page = client.get(url, {"customer": twins[1].external_id})
    assert page.context["chosen_customer"] == twins[1]


# --- Only the settings the trigger reads -------------------------------------------------------------------

@pytest.mark.parametrize(("trigger", "shown", "hidden"), [
    ("milestone", ["milestones"], ["interval_days"]),
    ("checkin", ["interval_days"], ["milestones"]),
    ("order", [], ["milestones", "interval_days"]),
])
def test_a_saved_cadence_shows_only_the_settings_its_trigger_reads(client, manager, trigger, shown, hidden):
    cadence = CadenceFactory(trigger=trigger)
    client.force_login(manager)
    page = client.get(f"/admin/touchpoints/cadence/{cadence.pk}/change/").content.decode()
    for name in shown:
        assert f'id="id_{name}"' in page
    for name in hidden:
        assert f'id="id_{name}"' not in page
    assert ("Trigger settings" in page) == bool(shown)
    assert 'id="id_trigger"' not in page  # the trigger of a saved cadence is fixed


def _add_form(**fields) -> dict:
    return {"name": "New cadence", "trigger": "order", "enabled": "on", "min_orders": "0", "min_total_spent": "0",
            "locales": "", "milestones": "5,10", "interval_days": "90", "steps-TOTAL_FORMS": "0",
            "steps-INITIAL_FORMS": "0", "steps-MIN_NUM_FORMS": "0", "steps-MAX_NUM_FORMS": "1000", **fields}


def test_the_add_form_has_every_setting_and_the_map_of_which_trigger_reads_which(client, manager):
    client.force_login(manager)
    page = client.get("/admin/touchpoints/cadence/add/").content.decode()
    assert 'id="id_milestones"' in page and 'id="id_interval_days"' in page and 'id="id_trigger"' in page
    assert 'id="cadence-trigger-fields"' in page and "touchpoints/cadence.js" in page


def test_a_hidden_setting_is_not_kept_and_cannot_block_the_form(client, manager):
    client.force_login(manager)
    # Given an order cadence whose (hidden) milestones field holds nonsense typed while it showed
    response = client.post("/admin/touchpoints/cadence/add/", _add_form(milestones="abc", interval_days="0"))
    # Then it is saved with the defaults of the settings it does not read
    assert response.status_code == 302
    cadence = Cadence.objects.get(name="New cadence")
    assert (cadence.trigger, cadence.milestones, cadence.interval_days) == ("order", "5,10,25,50,100", 90)


@pytest.mark.parametrize(("fields", "error"), [
    ({"trigger": "milestone", "milestones": ""}, "A milestone cadence needs at least one order number."),
    ({"trigger": "milestone", "milestones": "0"}, "Not an order number from 1 to 100000"),
    ({"trigger": "checkin", "interval_days": "0"}, "greater than or equal to 1"),
])
def test_the_settings_the_trigger_reads_are_still_validated(client, manager, fields, error):
    client.force_login(manager)
    response = client.post("/admin/touchpoints/cadence/add/", _add_form(**fields))
    assert response.status_code == 200 and error in response.content.decode()
    assert not Cadence.objects.filter(name="New cadence").exists()
