"""A person's language: chosen in the header (or the admin's user links), stored with a logged-in person and
applied on their next request whatever the browser says; anybody else's goes in Django's language cookie."""

import pytest
from django.conf import settings
from django.db import IntegrityError, transaction
from django.test import Client

from core.models import UserPreference
from tests.factories import UserPreferenceFactory

pytestmark = pytest.mark.django_db

LANGUAGE_URL = "/language/"


def client_for(user=None, **headers) -> Client:
    client = Client(headers=headers)
    if user is not None:
        client.force_login(user)
    return client


def test_a_logged_in_agents_choice_is_stored_and_applied_on_the_next_request_whatever_the_browser_says(agent):
    # Given an agent whose browser asks for Hungarian
    client = client_for(agent, accept_language="hu")
    assert client.get("/agent/").headers["Content-Language"] == "hu"
    # When they choose Arabic in the header
    response = client.post(LANGUAGE_URL, {"language": "ar", "next": "/agent/callbacks/"})
    # Then it is stored with them, they go back where they were, and their pages are Arabic, right to left
    assert response.status_code == 302 and response.url == "/agent/callbacks/"
    assert UserPreference.objects.get(user=agent).language == "ar"
    page = client.get("/agent/")
    assert page.headers["Content-Language"] == "ar"
    assert '<html lang="ar" dir="rtl">' in page.content.decode()
    # ... on another machine too, with another browser
    assert client_for(agent, accept_language="en").get("/agent/").headers["Content-Language"] == "ar"


def test_choosing_the_browsers_language_again_clears_the_choice(agent):
    UserPreferenceFactory(user=agent, language="fa")
    client = client_for(agent, accept_language="hu")
    assert client.get("/agent/").headers["Content-Language"] == "fa"
    client.post(LANGUAGE_URL, {"language": ""})
    assert UserPreference.objects.get(user=agent).language == ""
    assert client.get("/agent/").headers["Content-Language"] == "hu"


def test_a_managers_choice_applies_to_the_admin(manager):
    client = client_for(manager)
    client.post(LANGUAGE_URL, {"language": "ar", "next": "/admin/"})
    page = client.get("/admin/").content.decode()
    assert '<html lang="ar" dir="rtl">' in page
    assert 'action="/language/"' in page  # the chooser sits in the admin's user links


def test_anybody_else_gets_the_language_cookie_and_the_login_page_speaks_it():
    client = client_for()
    response = client.post(LANGUAGE_URL, {"language": "ar", "next": "/accounts/login/"})
    assert response.status_code == 302 and response.url == "/accounts/login/"
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "ar"
    assert not UserPreference.objects.exists()
    page = client.get("/accounts/login/").content.decode()
    # The project's own catalogue, compiled at install time (core/catalogues.py), not committed
    assert '<html lang="ar" dir="rtl">' in page and "تسجيل الدخول" in page


@pytest.mark.parametrize("target", [
    "https://evil.example.com/", "//evil.example.com/agent/", "http://evil.example.com", "javascript:alert(1)",
    "/\\evil.example.com",
])
def test_the_way_back_never_leaves_the_site(agent, target):
    # An open redirect would turn our login into a phishing link: a foreign target sends to the root instead
    response = client_for(agent).post(LANGUAGE_URL, {"language": "hu", "next": target})
    assert response.status_code == 302 and response.url == "/"
    assert UserPreference.objects.get(user=agent).language == "hu"
    # The Referer, when no "next" is given, is held to the same rule
    response = client_for(agent).post(LANGUAGE_URL, {"language": "hu"}, headers={"referer": target})
    assert response.url == "/"


def test_the_referer_leads_back_when_it_is_this_site(agent):
    response = client_for(agent).post(LANGUAGE_URL, {"language": "hu"}, headers={"referer": "http://testserver/agent/?page=2"})
    assert response.url == "http://testserver/agent/?page=2"


@pytest.mark.parametrize("user_kind", ["agent", "anonymous"])
def test_an_unknown_language_is_refused_and_changes_nothing(agent, user_kind):
    UserPreferenceFactory(user=agent, language="fa")
    client = client_for(agent if user_kind == "agent" else None)
    for data in ({"language": "de"}, {"language": "ar-x-evil" * 5}, {}):
        response = client.post(LANGUAGE_URL, data)
        assert response.status_code == 400
        assert response.content.decode()  # says why
        assert settings.LANGUAGE_COOKIE_NAME not in response.cookies
    assert UserPreference.objects.get(user=agent).language == "fa"
    assert client.get(LANGUAGE_URL).status_code == 405


def test_the_database_refuses_a_language_outside_the_list(agent):
    with pytest.raises(IntegrityError), transaction.atomic():
        UserPreference.objects.create(user=agent, language="xx")


@pytest.mark.parametrize(("code", "direction", "name"), [
    ("en", "ltr", "English"), ("ar", "rtl", "العربية"), ("fa", "rtl", "فارسی"), ("hu", "ltr", "Magyar"),
])
def test_the_agent_page_names_its_language_and_direction(agent, code, direction, name):
    # Given Django's language cookie (the agent chose nothing yet)
    client = client_for(agent)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = code
    # When the queue page renders
    page = client.get("/agent/").content.decode()
    # Then the page says which language it is in and which way it reads, and the chooser offers every language
    # named in itself, the current one selected
    assert f'<html lang="{code}" dir="{direction}">' in page
    chooser = page[page.index('class="language-chooser"'):]
    chooser = chooser[:chooser.index("</form>")]
    assert f'<option value="{code}" lang="{code}" selected>{name}</option>' in chooser
    assert chooser.count("<option ") == len(settings.LANGUAGES) + 1  # and "Browser's language"
    assert chooser.count(" selected") == 1
