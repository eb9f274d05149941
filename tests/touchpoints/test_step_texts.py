"""A step's message per language (touchpoints.CadenceStepText) and the offer's text in the message's language:
what the rendering picks, what a real send carries and logs, what the preview shows, and the admin pages
where a manager writes the texts and sees which languages lack one."""

import logging

import pytest
from django.db import IntegrityError, transaction

from tests.factories import CadenceStepTextFactory, OfferFactory, OfferTranslationFactory
from tests.touchpoints.conftest import NOW, make_customer, make_step, make_touchpoint
from touchpoints.models import CadenceStepText
from touchpoints.services.preview import cadence_step_preview
from touchpoints.services.rendering import touchpoint_context, touchpoint_render
from touchpoints.services.sending import touchpoint_send
from touchpoints.services.transports import LoggingSmsBackend
from winback.models import Coupon

pytestmark = pytest.mark.django_db

SCRIPTS = {
    "en": "Twenty percent off your next order.",
    "ar": "خصم عشرين بالمئة على طلبك القادم.",
    "fa": "بیست درصد تخفیف برای سفارش بعدی شما.",
    "hu": "Húsz százalék kedvezmény a következő rendeléséből.",
}


@pytest.fixture
def offer():
    offer = OfferFactory(name="Twenty off", script=SCRIPTS["en"], code_prefix="TWENTY")
    for language in ("ar", "fa", "hu"):
        OfferTranslationFactory(offer=offer, language=language, name=f"{language} twenty", script=SCRIPTS[language])
    return offer


def at_risk(customer):
    customer.status = "at_risk"
    customer.save(update_fields=["status"])
    return customer


def _render(step, customer, offer=None):
    coupon = Coupon(code="TWENTY-ABC123", offer=offer) if offer else None
    context = touchpoint_context(customer=customer, touchpoint_id=7, template=step.template,
                                 marketing=step.cadence.marketing, coupon=coupon)
    return touchpoint_render(template=step.template, locale=customer.locale, context=context, step=step)


@pytest.mark.parametrize("locale", ["en", "ar", "fa-IR", "hu"])
def test_each_customer_gets_the_offer_script_in_their_own_language(offer, locale):
    # Given an offer written in every language, on a win-back offer step
    step = make_step(template="winback_offer", offer=offer)
    customer = make_customer(locale=locale)
    # When the message is rendered for a customer of each language
    rendered = _render(step, customer, offer)
    # Then every part carries that language's script, and nothing fell back
    script = SCRIPTS[locale.split("-")[0]]
    assert script in rendered.html and script in rendered.text
    assert rendered.fallbacks == ()


def test_a_missing_script_falls_back_to_the_default_language_and_the_log_names_the_touchpoint(offer, caplog):
    # Given the Hungarian script blanked (the name stays)
    offer.translations.filter(language="hu").update(script="")
    step = make_step(template="winback_offer", offer=offer)
    # When a Hungarian customer's message is rendered
    with caplog.at_level(logging.INFO, logger="touchpoints.services.rendering"):
        rendered = _render(step, make_customer(locale="hu"), offer)
    # Then the message is Hungarian with the English script in it, and the render says so
    assert rendered.locale == "hu" and SCRIPTS["en"] in rendered.html
    assert [(u.what, u.asked, u.used) for u in rendered.fallbacks] == [("offer script", "hu", "en")]
    assert "touchpoint 7 in hu: offer script of offer" in caplog.text and "has no hu text, used en" in caplog.text


def test_a_step_text_replaces_the_template_for_its_language_only(offer):
    # Given a manager's Persian text for the step, with placeholders and a character HTML must escape
    step = make_step(template="winback_offer", offer=offer)
    CadenceStepTextFactory(step=step, language="fa", subject="هدیه‌ای برای {first_name}",
                           body="سلام {first_name}،\n\nپیشنهاد ما: {offer} <b>کد</b> {code}\nخط دوم", sms="")
    # When a Persian and a Hungarian customer get the step
    persian = _render(step, make_customer(name="Dara Karimi", locale="fa-IR"), offer)
    hungarian = _render(step, make_customer(name="Anna Kovács", locale="hu"), offer)
    # Then the Persian message is the manager's text, placeholders filled, in the product's layout
    assert persian.source == "step text" and persian.locale == "fa"
    assert persian.subject == "هدیه‌ای برای Dara"
    assert "پیشنهاد ما: " + SCRIPTS["fa"] in persian.text and "TWENTY-ABC123" in persian.text
    assert '<p style="margin:0 0 16px 0;">سلام Dara،</p>' in persian.html
    assert "&lt;b&gt;کد&lt;/b&gt;" in persian.html and "<b>کد</b>" not in persian.html  # text, not markup
    assert "TWENTY-ABC123<br>خط دوم" in persian.html
    assert 'dir="rtl"' in persian.html and "TWENTY-ABC123" in persian.html  # the coupon box
    assert persian.text.startswith("\u200f")  # the layout's right-to-left mark, as the templates' texts
    assert "/t/u/" in persian.html and "/t/u/" in persian.text  # the unsubscribe footer
    # And the Hungarian one is still the file template (with its Hungarian script)
    assert hungarian.source == "template" and hungarian.locale == "hu"
    assert SCRIPTS["hu"] in hungarian.html and "Dara" not in hungarian.html


def test_an_incomplete_step_text_leaves_the_template_in_place():
    # Given an email step whose Arabic text has only the SMS part
    step = make_step(template="appreciation")
    CadenceStepTextFactory(step=step, language="ar", subject="", body="", sms="{brand}: شكرًا")
    # Then an Arabic customer's email comes from the Arabic template
    rendered = _render(step, make_customer(locale="ar"))
    assert rendered.source == "template" and rendered.locale == "ar"
    # While an SMS step uses the text, right to left though it opens with the (Latin) brand
    step.channel = "sms"
    step.save()
    sms = _render(step, make_customer(locale="ar")).sms
    assert sms.startswith("\u200f") and "شكرًا" in sms


def test_a_step_text_in_the_default_language_replaces_the_english_template_for_other_languages_too():
    # Given an English step text (French has neither a text nor templates; Persian has templates)
    step = make_step(template="appreciation")
    CadenceStepTextFactory(step=step, language="en", subject="We value you, {first_name}", body="Thanks.", sms="")
    # Then a French customer (no French anything) gets the English step text, a Persian one the Persian template
    assert _render(step, make_customer(name="Zoe Martin", locale="fr")).subject == "We value you, Zoe"
    assert _render(step, make_customer(locale="fa")).source == "template"


def test_a_survey_step_text_keeps_the_score_links():
    step = make_step(trigger="lapsed", template="winback_miss_you")
    CadenceStepTextFactory(step=step, language="hu", subject="Hiányzik nekünk", body="Mennyire ajánlana minket?", sms="")
    rendered = _render(step, make_customer(locale="hu"))
    assert rendered.source == "step text"
    assert rendered.html.count("/t/s/") == 11 and rendered.text.count("/t/s/") == 11  # scores 0 to 10, one link each
    assert "Mennyire ajánlana minket?" in rendered.text


def test_an_sms_step_text_is_sent_with_the_stop_link(settings):
    # Given an SMS step with a Hungarian text, and a Hungarian customer with a phone
    settings.TOUCHPOINT_SMS_BACKEND = "touchpoints.services.transports.LoggingSmsBackend"
    LoggingSmsBackend.sent.clear()
    step = make_step(template="appreciation", channel="sms")
    CadenceStepTextFactory(step=step, language="hu", subject="", body="", sms="{brand}: köszönjük, {first_name}!")
    customer = at_risk(make_customer(name="Kovács Anna", locale="hu", phone="+36201234567"))
    # When it is sent
    assert touchpoint_send(touchpoint_id=make_touchpoint(customer, step).pk, now=NOW) == "sent"
    # Then the text is the manager's (greeting with the whole name, family name first, as Hungarian does), with
    # the stop link added
    text = LoggingSmsBackend.sent[-1]["text"]
    assert text.startswith(f"{settings.WINBACK_BRAND_NAME}: köszönjük, Kovács Anna!") and "/t/u/" in text


def test_a_real_send_carries_the_step_text_and_the_offer_in_the_customers_language(smtp, offer):
    step = make_step(template="winback_offer", offer=offer)
    CadenceStepTextFactory(step=step, language="ar", subject="هدية لك يا {first_name}", body="{offer}", sms="")
    customer = at_risk(make_customer(name="Layla Haddad", locale="ar"))
    assert touchpoint_send(touchpoint_id=make_touchpoint(customer, step).pk, now=NOW) == "sent"
    message = smtp.messages[0]
    assert str(message["Subject"]) == "هدية لك يا Layla"
    assert SCRIPTS["ar"] in message.get_body(("html",)).get_content()


def test_the_preview_shows_the_step_text_and_warns_of_a_fallback(offer):
    offer.translations.filter(language="fa").delete()
    step = make_step(template="winback_offer", offer=offer)
    CadenceStepTextFactory(step=step, language="fa", subject="برای {first_name}", body="{offer}", sms="")
    preview = cadence_step_preview(step=step, customer=None, locale="fa")
    assert preview.rendered.source == "step text"
    assert SCRIPTS["en"] in preview.rendered.html  # no Persian script: the English one
    assert "has no script in this language (Persian), so this message shows its script in the fallback language: English." in preview.warning
    assert "has no name in this language (Persian)" in preview.warning


# --- The admin ---------------------------------------------------------------------------------------------

def _texts_post(rows: list[dict]) -> dict:
    data = {"texts-TOTAL_FORMS": len(rows), "texts-INITIAL_FORMS": sum("id" in r for r in rows),
            "texts-MIN_NUM_FORMS": 0, "texts-MAX_NUM_FORMS": 4}
    for i, row in enumerate(rows):
        data.update({f"texts-{i}-{key}": value for key, value in row.items()})
    return data


def test_the_cadence_page_marks_the_missing_languages_and_links_to_the_texts(client, manager):
    step = make_step(template="appreciation")
    CadenceStepTextFactory(step=step, language="ar")
    client.force_login(manager)
    page = client.get(f"/admin/touchpoints/cadence/{step.cadence_id}/change/").content.decode()
    assert ">fa</bdi>" in page and ">hu</bdi>" in page and ">ar</bdi>" not in page
    assert f'href="/admin/touchpoints/cadencestep/{step.pk}/change/"' in page


def test_a_manager_adds_and_edits_a_step_text(client, manager):
    step = make_step(template="appreciation")
    client.force_login(manager)
    url = f"/admin/touchpoints/cadencestep/{step.pk}/change/"
    page = client.get(url).content.decode()
    assert "Hungarian: missing. Customers of this language get the text in the fallback language: English." in page
    response = client.post(url, _texts_post([{"language": "hu", "subject": "Köszönjük", "body": "Kedves {first_name}!", "sms": ""}]))
    assert response.status_code == 302, response.content.decode()[:2000]
    text = step.texts.get()
    response = client.post(url, _texts_post([{"id": text.pk, "step": step.pk, "language": "hu", "subject": "Köszönjük!",
                                              "body": "Kedves {first_name}!", "sms": ""}]))
    assert response.status_code == 302
    assert step.texts.get().subject == "Köszönjük!"
    assert "Hungarian: written." in client.get(url).content.decode()


@pytest.mark.parametrize("row, field", [
    ({"language": "de", "subject": "Danke", "body": "Hallo", "sms": ""}, "language"),
    ({"language": "hu", "subject": "x" * 201, "body": "Szia", "sms": ""}, "subject"),
    ({"language": "hu", "subject": "", "body": "", "sms": "x" * 481}, "sms"),
    ({"language": "hu", "subject": "Szia", "body": "x" * 5001, "sms": ""}, "body"),
])
def test_the_form_refuses_an_unknown_language_and_overlong_texts(client, manager, row, field):
    step = make_step(template="appreciation")
    client.force_login(manager)
    response = client.post(f"/admin/touchpoints/cadencestep/{step.pk}/change/", _texts_post([row]))
    assert response.status_code == 200
    assert response.context["inline_admin_formsets"][0].formset.errors[0].get(field)
    assert not step.texts.exists()


def test_the_form_refuses_a_text_with_nothing_to_send(client, manager):
    step = make_step(template="appreciation")
    client.force_login(manager)
    response = client.post(f"/admin/touchpoints/cadencestep/{step.pk}/change/",
                           _texts_post([{"language": "hu", "subject": "Csak tárgy", "body": "", "sms": ""}]))
    assert response.status_code == 200 and not step.texts.exists()


def test_the_database_refuses_an_unknown_language_a_second_row_and_an_overlong_body():
    step = make_step(template="appreciation")
    CadenceStepTextFactory(step=step, language="ar")
    with pytest.raises(IntegrityError), transaction.atomic():
        CadenceStepText.objects.create(step=step, language="de", subject="Danke", body="Hallo")
    with pytest.raises(IntegrityError), transaction.atomic():
        CadenceStepText.objects.create(step=step, language="ar", subject="مرة أخرى", body="نص")
    with pytest.raises(IntegrityError), transaction.atomic():
        CadenceStepText.objects.create(step=step, language="hu", subject="Szia", body="x" * 5001)


def test_the_steps_own_page_is_not_for_adding_or_deleting(client, manager):
    client.force_login(manager)
    assert client.get("/admin/touchpoints/cadencestep/add/").status_code == 403
    assert "touchpoints/cadencestep/" not in client.get("/admin/").content.decode()
