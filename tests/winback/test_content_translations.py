"""Manager-written texts per language (core/content.py): offers and reasons for leaving, their fallback chain,
their admin inlines with the missing-language mark, the database's own guards, and the seeded defaults."""

import pytest
from django.db import DataError, IntegrityError, transaction

from core.content import content_language_chain, content_lookup, content_missing_languages, content_text, content_texts
from tests.factories import LeaveReasonFactory, LeaveReasonTranslationFactory, OfferFactory, OfferTranslationFactory
from winback.defaults import OFFER_TRANSLATIONS, REASON_TRANSLATIONS, winback_defaults_ensure
from winback.models import LeaveReason, LeaveReasonTranslation, Offer, OfferTranslation

pytestmark = pytest.mark.django_db


@pytest.fixture
def offer():
    offer = OfferFactory(name="Free delivery (test)", script="Free delivery on your next order.")
    OfferTranslationFactory(offer=offer, language="fa", name="ارسال رایگان", script="ارسال رایگان سفارش بعدی شما.")
    OfferTranslationFactory(offer=offer, language="ar", name="توصيل مجاني", script="")  # the script not written yet
    return offer


def test_the_chain_runs_from_the_region_to_the_language_to_the_business_default(settings):
    settings.LANGUAGE_CODE = "en"
    assert content_language_chain("fa-IR") == ["fa-ir", "fa", "en"]
    assert content_language_chain("hu_HU") == ["hu-hu", "hu", "en"]
    assert content_language_chain("") == ["en"]


def test_a_customer_gets_their_language_then_its_base_then_the_default_then_the_own_text(offer, settings):
    settings.LANGUAGE_CODE = "en"
    # A Persian customer from Iran: the fa row, and that is no fallback (fa-IR reads fa)
    found = content_lookup(obj=offer, field="script", language="fa-IR")
    assert (found.text, found.language, found.fallback) == ("ارسال رایگان سفارش بعدی شما.", "fa", False)
    # Arabic has a name but an empty script: the name in Arabic, the script falls back to the own (English) text
    assert content_text(obj=offer, field="name", language="ar-EG") == "توصيل مجاني"
    found = content_lookup(obj=offer, field="script", language="ar-EG")
    assert (found.text, found.language, found.fallback) == ("Free delivery on your next order.", "en", True)
    # Hungarian has no row: the own text, marked as a fallback
    assert content_lookup(obj=offer, field="name", language="hu").fallback is True
    assert content_text(obj=offer, field="name", language="hu") == "Free delivery (test)"
    # English is the own text, no fallback
    assert content_lookup(obj=offer, field="name", language="en").fallback is False


def test_a_row_in_the_default_language_overrides_the_own_text_for_everyone_without_their_own(offer, settings):
    settings.LANGUAGE_CODE = "en"
    OfferTranslationFactory(offer=offer, language="en", name="Free shipping", script="Shipping is on us.")
    assert content_text(obj=offer, field="name", language="hu") == "Free shipping"
    assert content_text(obj=offer, field="name", language="fa") == "ارسال رایگان"


def test_the_business_default_is_a_setting(offer, settings):
    # Given a Persian business: the fa row is what a Hungarian customer gets when hu is missing
    settings.LANGUAGE_CODE = "fa"
    assert content_text(obj=offer, field="name", language="hu") == "ارسال رایگان"


def test_many_objects_take_one_query(django_assert_num_queries):
    reasons = [LeaveReasonFactory(name=f"Reason {i}") for i in range(5)]
    for reason in reasons[:3]:
        LeaveReasonTranslationFactory(reason=reason, language="hu", name=f"Ok {reason.pk}")
    with django_assert_num_queries(1):
        names = content_texts(objects=reasons, field="name", language="hu-HU")
    assert names == {r.pk: (f"Ok {r.pk}" if i < 3 else r.name) for i, r in enumerate(reasons)}
    with django_assert_num_queries(0):
        assert content_texts(objects=[], field="name", language="hu") == {}


def test_prefetched_rows_take_no_query(offer, django_assert_num_queries):
    fetched = Offer.objects.prefetch_related("translations").get(pk=offer.pk)
    with django_assert_num_queries(0):
        assert content_text(obj=fetched, field="name", language="fa") == "ارسال رایگان"
        assert content_missing_languages(obj=fetched) == ["ar", "hu"]  # ar: the script is missing


def test_an_unknown_field_is_an_error_not_a_silent_own_text(offer):
    with pytest.raises(ValueError):
        content_text(obj=offer, field="code_prefix", language="fa")


# --- The admin ---------------------------------------------------------------------------------------------

def _inline_post(offer: Offer, rows: list[dict], **extra) -> dict:
    data = {"name": offer.name, "script": offer.script, "code_prefix": offer.code_prefix, "valid_days": offer.valid_days,
            "active": "on", "translations-TOTAL_FORMS": len(rows), "translations-INITIAL_FORMS": sum("id" in r for r in rows),
            "translations-MIN_NUM_FORMS": 0, "translations-MAX_NUM_FORMS": 4, **extra}
    for i, row in enumerate(rows):
        data.update({f"translations-{i}-{key}": value for key, value in row.items()})
        data[f"translations-{i}-offer"] = offer.pk
    return data


def test_the_offer_list_marks_the_languages_missing(client, manager, offer):
    # Given an offer written in fa only (ar lacks its script), and one written in every language
    complete = OfferFactory(name="Complete offer")
    for language in ("ar", "fa", "hu"):
        OfferTranslationFactory(offer=complete, language=language, name=f"{language} name", script=f"{language} script")
    client.force_login(manager)
    # When a manager opens the offer list
    page = client.get("/admin/winback/offer/").content.decode()
    # Then the first shows ar and hu as missing, the other none
    row = next(line for line in page.split("<tr") if "Free delivery (test)" in line and "field-missing_languages" in line)
    assert '<bdi class="content-missing" title="Arabic">ar</bdi>' in row
    assert '<bdi class="content-missing" title="Hungarian">hu</bdi>' in row
    assert ">fa</bdi>" not in row
    complete_row = next(line for line in page.split("<tr") if "Complete offer" in line and "field-missing_languages" in line)
    assert "content-missing" not in complete_row and "content-complete" in complete_row


def test_the_change_page_says_what_a_language_without_text_gets(client, manager, offer):
    client.force_login(manager)
    page = client.get(f"/admin/winback/offer/{offer.pk}/change/").content.decode()
    assert "Hungarian: missing. Customers of this language get the text in the fallback language: English." in page
    assert "Persian: written." in page
    assert "winback/content_languages.css" in page


def test_a_manager_adds_and_edits_translations_inline(client, manager, offer):
    client.force_login(manager)
    fa, ar = offer.translations.get(language="fa"), offer.translations.get(language="ar")
    rows = [{"id": fa.pk, "language": "fa", "name": "ارسال رایگان!", "script": fa.script},
            {"id": ar.pk, "language": "ar", "name": ar.name, "script": "توصيل مجاني لطلبك القادم."},
            {"language": "hu", "name": "Ingyenes kiszállítás", "script": "Ingyenes kiszállítás a következő rendeléséhez."}]
    response = client.post(f"/admin/winback/offer/{offer.pk}/change/", _inline_post(offer, rows))
    assert response.status_code == 302, response.content.decode()[:3000]
    assert dict(offer.translations.values_list("language", "name")) == {
        "fa": "ارسال رایگان!", "ar": "توصيل مجاني", "hu": "Ingyenes kiszállítás"}
    assert content_missing_languages(obj=offer) == []


@pytest.mark.parametrize("row, field", [
    ({"language": "de", "name": "Gratis Lieferung", "script": ""}, "language"),  # not a language the product speaks
    ({"language": "hu", "name": "x" * 101, "script": ""}, "name"),  # longer than the offer's own name may be
    ({"language": "hu", "name": "Ok", "script": "x" * 301}, "script"),
])
def test_the_form_refuses_an_unknown_language_and_an_overlong_text(client, manager, offer, row, field):
    client.force_login(manager)
    response = client.post(f"/admin/winback/offer/{offer.pk}/change/", _inline_post(offer, [row]))
    assert response.status_code == 200
    assert response.context["inline_admin_formsets"][0].formset.errors[0].get(field)
    assert not offer.translations.filter(language="hu").exists()


def test_the_form_refuses_a_second_row_for_a_language(client, manager, offer):
    client.force_login(manager)
    rows = [{"language": "hu", "name": "Egy", "script": ""}, {"language": "hu", "name": "Kettő", "script": ""}]
    response = client.post(f"/admin/winback/offer/{offer.pk}/change/", _inline_post(offer, rows))
    assert response.status_code == 200
    assert not offer.translations.filter(language="hu").exists()


def test_the_database_refuses_an_unknown_language_a_second_row_and_an_overlong_name(offer):
    reason = LeaveReasonFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        LeaveReasonTranslation.objects.create(reason=reason, language="de", name="Preis")
    with pytest.raises(IntegrityError), transaction.atomic():
        OfferTranslation.objects.create(offer=offer, language="fa", name="دوباره")
    # (PostgreSQL's varchar(80) refuses it as a DataError, SQLite's CHECK as an IntegrityError)
    with pytest.raises((DataError, IntegrityError)), transaction.atomic():
        LeaveReasonTranslation.objects.create(reason=reason, language="hu", name="x" * 81)


def test_the_reason_admin_edits_translations_inline_and_marks_what_is_missing(client, manager):
    reason = LeaveReasonFactory(name="Too slow")
    client.force_login(manager)
    data = {"name": reason.name, "position": 0, "active": "on", "translations-TOTAL_FORMS": 1,
            "translations-INITIAL_FORMS": 0, "translations-MIN_NUM_FORMS": 0, "translations-MAX_NUM_FORMS": 4,
            "translations-0-language": "ar", "translations-0-name": "بطء الخدمة", "translations-0-reason": reason.pk}
    assert client.post(f"/admin/winback/leavereason/{reason.pk}/change/", data).status_code == 302
    assert content_text(obj=reason, field="name", language="ar") == "بطء الخدمة"
    row = next(line for line in client.get("/admin/winback/leavereason/").content.decode().split("<tr") if "Too slow" in line and "field-missing_languages" in line)
    assert ">fa</bdi>" in row and ">hu</bdi>" in row and ">ar</bdi>" not in row


# --- The seeded defaults -----------------------------------------------------------------------------------

def test_the_default_offers_and_reasons_come_in_every_language(settings):
    settings.LANGUAGE_CODE = "en"
    winback_defaults_ensure()
    for name in REASON_TRANSLATIONS:
        reason = LeaveReason.objects.get(name=name)
        assert content_missing_languages(obj=reason) == [], name
    for name in OFFER_TRANSLATIONS:
        offer = Offer.objects.get(name=name)
        assert content_missing_languages(obj=offer) == [], name
    assert content_text(obj=Offer.objects.get(name="Free delivery"), field="name", language="hu") == "Ingyenes kiszállítás"


def test_seeding_again_adds_nothing_and_keeps_a_managers_edit():
    winback_defaults_ensure()
    edited = OfferTranslation.objects.get(offer__name="Free delivery", language="fa")
    edited.name = "ارسال رایگان تا پایان ماه"
    edited.save()
    before = (OfferTranslation.objects.count(), LeaveReasonTranslation.objects.count())
    winback_defaults_ensure()
    assert (OfferTranslation.objects.count(), LeaveReasonTranslation.objects.count()) == before
    edited.refresh_from_db()
    assert edited.name == "ارسال رایگان تا پایان ماه"
