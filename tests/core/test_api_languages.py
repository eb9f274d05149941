"""The API's error messages follow the client's Accept-Language (en, ar, fa, hu); what a program reads (the
status, the error shape, the field paths, the codes) stays the same in every language."""

import pytest
from django.utils import translation
from rest_framework.test import APIClient

from core.services import api_token_create

pytestmark = pytest.mark.django_db
LANGUAGES = ("en", "ar", "fa", "hu")


def in_language(language: str, text: str) -> str:
    with translation.override(language):
        return translation.gettext(text)


def assert_in_language(message: str, language: str, english: str) -> None:
    expected = in_language(language, english)
    if language != "en":
        # The catalogue has it, so the check below is not English compared with English.
        assert expected != english, f"{english!r} has no {language} translation"
    assert message == expected


@pytest.fixture
def token_client(integration) -> APIClient:
    client = APIClient()
    _, token = api_token_create(user=integration)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_validation_error_is_in_the_clients_language_with_stable_fields(token_client, language):
    # Given an integration that reads Persian, Arabic, Hungarian or English
    # When it posts a customer without the required fields
    response = token_client.post("/api/customers/", {}, format="json", HTTP_ACCEPT_LANGUAGE=language)
    # Then the 400 says so in that language, with the fields named as in every language
    assert response.status_code == 400, response.content
    body = response.json()
    assert_in_language(body["detail"], language, "Invalid input.")
    by_field = {e["field"]: e["message"] for e in body["errors"]}
    assert {"external_id", "name"} <= by_field.keys()
    assert_in_language(by_field["external_id"], language, "This field is required.")
    assert response["Content-Language"] == language


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_credentials_is_a_401_in_the_clients_language(language):
    # Given a client without a token
    # When it asks for customers
    response = APIClient().get("/api/customers/", HTTP_ACCEPT_LANGUAGE=language)
    # Then the 401 says why in its language
    assert response.status_code == 401
    assert_in_language(response.json()["detail"], language, "Authentication credentials were not provided.")


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_wrong_token_is_a_401_in_the_clients_language(db, language):
    # Given a client with a token that does not exist
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + "x" * 64)
    # When it asks for customers, then the project's own message is in its language
    response = client.get("/api/customers/", HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 401
    assert_in_language(response.json()["detail"], language, "Invalid token.")


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_forbidden_request_is_a_403_in_the_clients_language(agent, language):
    # Given an agent, who may not manage offers
    client = APIClient()
    client.force_authenticate(agent)
    # When the agent tries to create one
    response = client.post("/api/offers/", {"name": "x"}, format="json", HTTP_ACCEPT_LANGUAGE=language)
    # Then the 403 is in the agent's browser language
    assert response.status_code == 403, response.content
    assert_in_language(response.json()["detail"], language, "You do not have permission to perform this action.")


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_missing_record_and_an_unknown_url_are_404s_in_the_clients_language(token_client, language):
    # Given an authenticated client
    # When it asks for a customer that does not exist, and for a URL no route matches
    record = token_client.get("/api/customers/no-such-customer/", HTTP_ACCEPT_LANGUAGE=language)
    route = token_client.get("/api/no-such-thing/", HTTP_ACCEPT_LANGUAGE=language)
    # Then both are 404s in the error shape, in its language
    assert record.status_code == 404, record.content
    assert_in_language(record.json()["detail"], language, "Not found.")
    assert route.status_code == 404
    assert route["Content-Type"].startswith("application/json")
    assert_in_language(route.json()["detail"], language, "Not found.")


@pytest.mark.parametrize("language", ("ar", "fa", "hu"))
def test_a_nul_in_the_url_is_refused_in_the_clients_language(token_client, language):
    # Given a NUL in the query string, refused before any view runs
    response = token_client.get("/api/customers/?search=%00", HTTP_ACCEPT_LANGUAGE=language)
    # Then the 400 names the parameter, and says why in the client's language
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["field"] == "search"
    assert_in_language(error["message"], language, "Contains a NUL character (%00), which no value can hold.")
