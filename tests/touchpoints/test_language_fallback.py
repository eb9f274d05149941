"""A customer's message is in one language, picked down the chain fa-IR -> fa -> the business default
(LANGUAGE_CODE): the templates AND the gettext language active while they render (dates, numbers, any
{% translate %}), whoever renders it (a worker, a manager previewing in their own language)."""

import copy

import pytest
from django.utils import translation

from touchpoints.services.rendering import locale_candidates, touchpoint_render

PROBE = "{{ lang }}|{% load i18n %}{% get_current_language as current %}{{ current }}|{% translate 'Log in' %}"


@pytest.fixture
def probe_templates(tmp_path, settings):
    """emails/<locale>/probe.* in front of the project's templates, for the locales each test names."""
    def make(*locales: str) -> None:
        for locale in locales:
            folder = tmp_path / "emails" / locale
            folder.mkdir(parents=True)
            for suffix in ("html", "txt", "subject.txt", "sms.txt"):
                (folder / f"probe.{suffix}").write_text(PROBE, encoding="utf-8")
        templates = copy.deepcopy(settings.TEMPLATES)
        templates[0]["DIRS"] = [tmp_path, *templates[0]["DIRS"]]
        settings.TEMPLATES = templates  # resets the template engines
    return make


def test_the_candidates_run_from_the_region_to_the_language_to_the_business_default(settings):
    settings.LANGUAGE_CODE = "en"
    assert locale_candidates("fa-IR") == ["fa-ir", "fa", "en"]
    assert locale_candidates("fa_IR") == ["fa-ir", "fa", "en"]
    assert locale_candidates("hu") == ["hu", "en"]
    assert locale_candidates("") == ["en"]
    settings.LANGUAGE_CODE = "hu"  # the business default is a setting, not English
    assert locale_candidates("de-AT") == ["de-at", "de", "hu"]


def test_fa_ir_gets_the_persian_templates_and_persian_is_active_while_they_render(probe_templates):
    probe_templates("fa", "en")
    rendered = touchpoint_render(template="probe", locale="fa-IR", context={})
    assert rendered.locale == "fa"
    with translation.override("fa"):
        persian = translation.gettext("Log in")  # the translators' word, or the msgid until they give one
    assert rendered.subject == rendered.sms == f"fa|fa|{persian}"


def test_without_persian_templates_the_whole_message_falls_back_to_the_business_default(probe_templates, settings):
    probe_templates("en")
    settings.LANGUAGE_CODE = "en"
    rendered = touchpoint_render(template="probe", locale="fa-IR", context={})
    assert rendered.locale == "en"
    assert rendered.text == "en|en|Log in\n"


def test_the_gettext_language_is_the_customers_not_the_renderers(probe_templates):
    # Given a manager previewing in Hungarian, and an Arabic-speaking customer (ar-EG)
    probe_templates("ar", "en")
    with translation.override("hu"):
        rendered = touchpoint_render(template="probe", locale="ar-EG", context={})
        # Then the message is Arabic through and through (the compiled project catalogue), and the
        # renderer's language is back afterwards
        assert translation.get_language() == "hu"
    assert rendered.locale == "ar"
    assert rendered.html == "ar|ar|تسجيل الدخول"
    # And an unknown language gets the business default, in English, even under an Arabic request
    with translation.override("ar"):
        assert touchpoint_render(template="probe", locale="de-AT", context={}).subject == "en|en|Log in"
