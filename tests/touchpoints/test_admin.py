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
        assert f'dir=&quot;{direction}&quot;' in page  # the HTML part, inside the iframe's srcdoc
        assert 'id="preview-subject"' in page and 'id="preview-text"' in page
        if step.cadence.marketing:
            assert word in page


def test_the_cadence_page_lists_the_steps_with_preview_links(client, manager):
    client.force_login(manager)
    cadence = Cadence.objects.get(name="Win-back sequence")
    page = client.get(f"/admin/touchpoints/cadence/{cadence.pk}/change/").content.decode()
    assert page.count("/preview/?locale=ar") == 3


def test_agents_cannot_see_cadences_or_previews(client, agent):
    client.force_login(agent)
    step = CadenceStep.objects.exclude(template="").first()
    assert client.get(f"/admin/touchpoints/cadence/step/{step.pk}/preview/").status_code == 302  # to the login
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


@pytest.mark.parametrize("url", ["/admin/touchpoints/touchpointsettings/", "/admin/metrics/businesssettings/",
                                 "/admin/winback/callsettings/"])
def test_settings_are_one_row_a_manager_edits_but_cannot_add_twice_or_delete(client, manager, url):
    client.force_login(manager)
    assert client.get(url + "1/change/").status_code == 200
    assert client.get(url + "add/").status_code == 403
    assert client.get(url + "1/delete/").status_code == 403
