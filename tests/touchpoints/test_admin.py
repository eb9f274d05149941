import pytest

from tests.touchpoints.conftest import NOW, make_customer, make_step, make_touchpoint
from touchpoints.models import Cadence, CadenceStep
from touchpoints.services.sending import touchpoint_send
from touchpoints.services.transports import LoggingSmsBackend

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("locale, direction, word", [("en", "ltr", "Unsubscribe"), ("ar", "rtl", "إلغاء الاشتراك")])
def test_a_manager_previews_every_default_step_in_english_and_arabic(client, manager, locale, direction, word):
    client.force_login(manager)
    steps = CadenceStep.objects.exclude(template="").select_related("cadence")
    assert steps.count() >= 10
    for step in steps:
        response = client.get(f"/admin/touchpoints/cadence/step/{step.pk}/preview/?locale={locale}")
        assert response.status_code == 200, step
        page = response.content.decode()
        assert 'id="preview-subject"' in page and 'id="preview-text"' in page
        # The HTML part, in the page's sandboxed frame
        html_url = f"/admin/touchpoints/cadence/step/{step.pk}/preview/html/?locale={locale}"
        assert f'sandbox="" src="{html_url}"' in page
        html_part = client.get(html_url)
        assert html_part.status_code == 200, step
        html = html_part.content.decode()
        assert f'dir="{direction}"' in html
        if step.cadence.marketing:
            assert word in html


def test_the_previews_html_part_keeps_the_emails_inline_styles_and_runs_nothing(client, manager):
    # Given a manager and a default step's preview
    client.force_login(manager)
    step = CadenceStep.objects.exclude(template="").filter(channel="email").first()
    # When the frame loads the HTML part
    response = client.get(f"/admin/touchpoints/cadence/step/{step.pk}/preview/html/?locale=en")
    # Then the email's inline styles apply (an email has no stylesheet of its own) and nothing else may: no
    # script, no request out, and only the preview page (same origin) may frame it
    policy = dict(d.strip().split(" ", 1) if " " in d.strip() else (d.strip(), "")
                  for d in response["Content-Security-Policy"].split(";"))
    assert policy["style-src"] == "'unsafe-inline'" and 'style="' in response.content.decode()
    assert policy["default-src"] == "'none'" and "script-src" not in policy
    assert policy["frame-ancestors"] == "'self'" and "sandbox" in policy
    assert response["X-Frame-Options"] == "SAMEORIGIN"
    # While the preview page itself keeps the site's strict policy
    page = client.get(f"/admin/touchpoints/cadence/step/{step.pk}/preview/?locale=en")
    assert "'unsafe-inline'" not in page["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in page["Content-Security-Policy"]


def test_the_cadence_page_lists_the_steps_with_preview_links(client, manager):
    client.force_login(manager)
    cadence = Cadence.objects.get(name="Win-back sequence")
    page = client.get(f"/admin/touchpoints/cadence/{cadence.pk}/change/").content.decode()
    assert page.count("/preview/?locale=ar") == 3


def test_agents_cannot_see_cadences_or_previews(client, agent):
    client.force_login(agent)
    step = CadenceStep.objects.exclude(template="").first()
    assert client.get(f"/admin/touchpoints/cadence/step/{step.pk}/preview/").status_code == 302  # to the login
    assert client.get(f"/admin/touchpoints/cadence/step/{step.pk}/preview/html/").status_code == 302
    assert client.get("/admin/touchpoints/cadence/").status_code == 302


def test_an_sms_step_goes_through_the_pluggable_backend_and_is_on_the_timeline():
    LoggingSmsBackend.sent.clear()
    customer = make_customer(phone="+33612345678")
    customer.status = "at_risk"
    customer.save(update_fields=["status"])
    tp = make_touchpoint(customer, make_step(channel="sms", template="appreciation"))
    assert touchpoint_send(touchpoint_id=tp.pk, now=NOW) == "sent"
    assert [m["to"] for m in LoggingSmsBackend.sent] == ["+33612345678"]
    assert "/t/u/" in LoggingSmsBackend.sent[0]["text"]  # marketing SMS: a way to stop them
    tp.refresh_from_db()
    assert tp.contact.channel == "sms" and tp.provider_message_id == f"log-touchpoint-{tp.pk}"


@pytest.mark.parametrize("url", ["/admin/touchpoints/touchpointsettings/", "/admin/core/businesssettings/",
                                 "/admin/winback/callsettings/"])
def test_settings_are_one_row_a_manager_edits_but_cannot_add_twice_or_delete(client, manager, url):
    client.force_login(manager)
    assert client.get(url + "1/change/").status_code == 200
    assert client.get(url + "add/").status_code == 403
    assert client.get(url + "1/delete/").status_code == 403
