"""Dates, numbers and amounts as each language writes them (core/locale_format.py), and the business's digits
setting. The expected strings are written by hand, not computed with the code under test."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import IntegrityError
from django.template import Context, Template
from django.utils import translation

from core.locale_format import business_digits, date_local, money_local, number_local
from core.models import BusinessSettings
from tests.factories import BusinessSettingsFactory

DAY = dt.date(2026, 12, 1)
RLM, LRM, NBSP = "\u200f", "\u200e", "\xa0"


def business_writes(digits: str) -> BusinessSettings:
    """The settings row (the migrations create it) with this digits setting, saved as a manager would."""
    row = BusinessSettingsFactory()
    row.digits = digits
    row.save()
    return row


@pytest.mark.parametrize(("language", "digits", "expected"), [
    ("en", "latin", "1 Dec 2026"),
    ("en", "native", "1 Dec 2026"),  # English has no digits of its own
    ("hu", "latin", "2026. 12. 01."),
    ("hu", "native", "2026. 12. 01."),
    ("ar", "latin", "1 ديسمبر 2026"),
    ("ar", "native", "١ ديسمبر ٢٠٢٦"),
    ("ar-eg", "native", "١ ديسمبر ٢٠٢٦"),
    ("fa", "latin", "1405/09/10"),  # Solar Hijri: 10 Azar 1405
    ("fa", "native", "۱۴۰۵/۰۹/۱۰"),
    ("fa-IR", "latin", "1405/09/10"),
])
def test_a_date_is_written_as_the_language_writes_it(language, digits, expected):
    assert date_local(value=DAY, language=language, digits=digits) == expected


def test_the_persian_new_year_and_a_datetime_in_the_business_time_zone(settings):
    # Given Nowruz (1 Farvardin 1405 = 21 March 2026)
    assert date_local(value=dt.date(2026, 3, 21), language="fa", digits="latin") == "1405/01/01"
    # And a datetime late on 20 March UTC, which is already 21 March in Tehran
    settings.TIME_ZONE = "Asia/Tehran"
    late = dt.datetime(2026, 3, 20, 22, 0, tzinfo=dt.timezone.utc)
    assert date_local(value=late, language="fa", digits="latin") == "1405/01/01"
    assert date_local(value=late, language="hu") == "2026. 03. 21."


def test_hungarian_drops_the_closing_full_stop_before_a_case_ending():
    assert date_local(value=DAY, language="hu", before_suffix=True) + "-ig" == "2026. 12. 01-ig"


@pytest.mark.parametrize(("language", "digits", "expected"), [
    ("en", "latin", "€1,234.50"),
    ("hu", "latin", f"1{NBSP}234,50{NBSP}EUR"),
    ("ar", "latin", f"{RLM}1,234.50{NBSP}€"),
    ("ar", "native", f"{RLM}١٬٢٣٤٫٥٠{NBSP}€"),
    ("fa", "latin", f"{LRM}€{NBSP}1,234.50"),
    ("fa", "native", f"{LRM}€{NBSP}۱٬۲۳۴٫۵۰"),
])
def test_an_amount_is_written_with_the_languages_symbol_marks_and_digits(language, digits, expected):
    assert money_local(amount=Decimal("1234.50"), currency="EUR", language=language, digits=digits) == expected


def test_the_forint_gets_its_hungarian_symbol():
    assert money_local(amount=Decimal("15990"), currency="HUF", language="hu") == f"15{NBSP}990,00{NBSP}Ft"


@pytest.mark.parametrize(("language", "digits", "expected"), [
    ("en", "latin", "1,234.5"),
    ("hu", "latin", f"1{NBSP}234,5"),
    ("ar", "native", "١٬٢٣٤٫٥"),
    ("fa", "native", "۱٬۲۳۴٫۵"),
    ("fa", "latin", "1,234.5"),
])
def test_a_number_has_the_languages_marks_and_digits(language, digits, expected):
    assert number_local(value=Decimal("1234.5"), language=language, digits=digits) == expected


def test_empty_values_give_empty_text():
    assert date_local(value=None) == money_local(amount=None, currency="EUR") == number_local(value=None) == ""


@pytest.mark.django_db
def test_the_business_setting_decides_the_digits_and_a_change_shows_at_once():
    # Given a business that writes Latin digits (the default)
    settings_row = business_writes("latin")
    assert date_local(value=DAY, language="fa") == "1405/09/10"
    assert business_digits() == "latin"  # now cached
    # When a manager switches to the language's own digits
    settings_row.digits = "native"
    settings_row.save()
    # Then the very next date and amount use them (the cached value went with the save)
    assert date_local(value=DAY, language="fa") == "۱۴۰۵/۰۹/۱۰"
    assert money_local(amount=Decimal("5"), currency="EUR", language="ar") == f"{RLM}٥٫٠٠{NBSP}€"
    # And Hungarian and English stay with theirs
    assert date_local(value=DAY, language="hu") == "2026. 12. 01."


@pytest.mark.django_db
def test_the_database_refuses_an_unknown_digits_value():
    BusinessSettingsFactory()
    with pytest.raises(IntegrityError):
        BusinessSettings.objects.filter(pk=1).update(digits="roman")


@pytest.mark.django_db
def test_the_template_filters_follow_the_active_language():
    business_writes("native")
    template = Template('{% load locale_format %}{{ day|local_date }}|{{ amount|money:"EUR" }}|{{ n|local_number }}|'
                        '{{ day|local_date:"suffix" }}')
    context = Context({"day": DAY, "amount": Decimal("12.5"), "n": 25})
    with translation.override("fa"):
        assert template.render(context) == f"۱۴۰۵/۰۹/۱۰|{LRM}€{NBSP}۱۲٫۵۰|۲۵|۱۴۰۵/۰۹/۱۰"
    with translation.override("hu"):
        assert template.render(context) == f"2026. 12. 01.|12,50{NBSP}EUR|25|2026. 12. 01"
    with translation.override("en"):
        assert template.render(context) == "1 Dec 2026|€12.50|25|1 Dec 2026"


@pytest.mark.django_db
def test_date_html_shows_the_gregorian_date_on_hover_only_where_the_calendar_differs():
    BusinessSettingsFactory()
    template = Template("{% load locale_format %}{% date_html day %}")
    context = Context({"day": DAY})
    with translation.override("fa"):
        assert template.render(context) == '<time datetime="2026-12-01" title="2026-12-01">1405/09/10</time>'
    with translation.override("hu"):
        assert template.render(context) == '<time datetime="2026-12-01">2026. 12. 01.</time>'
