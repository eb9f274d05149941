"""Whom a message greets: the given name, or the whole name in Hungarian, whose names put the family name first
("Kedves Kovács Anna!": the first word would greet Mrs Kovács as "Kovács")."""

import pytest

from touchpoints.services.rendering import greeting_name


@pytest.mark.parametrize(("name", "locale", "expected"), [
    ("Ada Lovelace", "en", "Ada"),
    ("Ada  Lovelace ", "en-GB", "Ada"),
    ("مریم احمدی", "fa-IR", "مریم"),
    ("Kovács Anna", "hu", "Kovács Anna"),
    ("Kovács  Anna", "hu-HU", "Kovács Anna"),
    ("", "hu", ""),
])
def test_the_greeting_uses_the_given_name_or_the_whole_name_where_that_is_the_custom(name, locale, expected):
    # Given a customer's name and locale; when a message greets them; then
    assert greeting_name(name=name, locale=locale) == expected
