"""A figure's text in each language (issue 16): the language's decimal marks, the unit in a translated
sentence, and a signed number isolated as left-to-right so that "-2.1%" does not read "2.1%-" in Arabic."""

import pytest
from django.utils import translation
from django.utils.translation import gettext

from metrics.services.calculators import Figure
from metrics.services.charts import format_change, format_change_html, format_value, format_value_html

pytestmark = pytest.mark.django_db
LRI, PDI = "\u2066", "\u2069"


def in_language(language: str, msgid: str, value: str) -> str:
    with translation.override(language):
        return gettext(msgid) % {"value": value}


def test_english_figures_read_as_before():
    with translation.override("en"):
        # Given figures of each unit, Then each reads with its unit and one sentence
        assert format_value(0.125, "rate") == "12.5%"
        assert format_value(321.66, "days") == "321.7 days"
        assert format_value(1234.5, "money") == "1,234.50"
        assert format_value(None, "rate") == "n/a"
        # And a change carries its sign; a change that rounds to nothing is neither up nor down
        assert format_change(0.004, "rate") == "+0.4 pp"
        assert format_change(-0.00001, "rate") == "\u00b10.0 pp"
        assert format_value(-0.00001, "rate") == "0.0%"
        assert format_change(-2, "count") == "-2"


def test_hungarian_writes_a_decimal_comma_and_groups_with_a_space():
    with translation.override("hu"):
        assert format_value(0.125, "rate") == in_language("hu", "%(value)s%%", "12,5")
        assert format_value(321.66, "days") == in_language("hu", "%(value)s days", "321,7")
        assert format_value(1234.5, "money") == "1\u00a0234,50"
        assert format_change(-0.021, "rate") == in_language("hu", "%(value)s pp", "-2,1")


@pytest.mark.parametrize("language", ["ar", "fa"])
def test_a_signed_number_is_isolated_in_right_to_left_text_and_pages(language):
    with translation.override(language):
        # Given a fall of 2.1 points, When it is written as text (an SVG tooltip) and for a page
        text, html = format_change(-0.021, "rate"), format_change_html(-0.021, "rate")
        # Then the sign and the digits are one left-to-right island inside the language's sentence
        assert text == in_language(language, "%(value)s pp", f"{LRI}-2.1{PDI}")
        assert html == in_language(language, "%(value)s pp", '<bdi dir="ltr">-2.1</bdi>')
        # And a figure without a sign needs no isolating in text, but is isolated on a page all the same
        assert format_value(0.125, "rate") == in_language(language, "%(value)s%%", "12.5")
        assert format_value_html(321.66, "days") == in_language(language, "%(value)s days", '<bdi dir="ltr">321.7</bdi>')


def test_a_page_value_escapes_a_translation_and_keeps_its_number_isolated():
    with translation.override("en"):
        html = format_value_html(-0.03, "rate")
    assert html == '<bdi dir="ltr">-3.0</bdi>%'


def test_inputs_are_whole_sentences_with_a_plural_by_count():
    with translation.override("en"):
        one = Figure("revenue_won_back", 10.0, 10.0, None, {"cases": 1}).inputs()
        many = Figure("revenue_won_back", 10.0, 10.0, None, {"cases": 1200}).inputs()
        rate = Figure("churn_rate", 0.05, 12.0, 240.0).inputs()
    assert (one, many, rate) == ("1 case won", "1,200 cases won", "12 of 240")
    with translation.override("hu"):
        assert Figure("churn_rate", 0.05, 1200.0, 24000.0).inputs() == gettext("%(part)s of %(whole)s") % {
            "part": "1\u00a0200", "whole": "24\u00a0000"}
