"""API tokens (issue 13): stored only as a digest, expiring, revocable by the integration, by a manager in the
admin and by an operator's drf_create_token -r; old plain keys converted so integrations keep working."""

import datetime as dt
import hashlib
import importlib
import re
from io import StringIO
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from core.services import api_token_create

pytestmark = pytest.mark.django_db

URL = "/api/customers/"
convert = importlib.import_module("core.migrations.0005_api_tokens_from_authtoken")


def client_with(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def test_a_token_is_stored_only_as_its_digest(integration, settings):
    # When a token is made
    stored, token = api_token_create(user=integration)
    # Then no column of its row holds the token (nor more than its indexed first 15 characters)
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM knox_authtoken")
        row = cursor.fetchone()
    assert not any(token in str(value) for value in row)
    assert stored.digest == hashlib.sha512(token.encode()).hexdigest() and stored.token_key == token[:15]
    # And it expires after API_TOKEN_TTL_DAYS
    assert stored.expiry - timezone.now() == pytest.approx(dt.timedelta(days=settings.API_TOKEN_TTL_DAYS),
                                                          abs=dt.timedelta(minutes=1))
    assert client_with(token).get(URL).status_code == 200


def test_an_expired_token_is_a_401_saying_so(integration):
    stored, token = api_token_create(user=integration)
    AuthToken.objects.filter(digest=stored.digest).update(expiry=timezone.now() - dt.timedelta(seconds=1))
    response = client_with(token).get(URL)
    assert response.status_code == 401 and response.json()["detail"].startswith("The token has expired")


def test_an_integration_revokes_its_token_and_its_other_tokens_keep_working(integration):
    _, token = api_token_create(user=integration)
    _, other = api_token_create(user=integration)
    response = client_with(token).post("/api/auth/logout/")
    assert response.status_code == 204
    assert client_with(token).get(URL).status_code == 401
    assert client_with(other).get(URL).status_code == 200


def test_logout_all_revokes_every_token_of_the_user(integration, manager):
    tokens = [api_token_create(user=integration)[1] for _ in range(3)]
    _, managers = api_token_create(user=manager)
    assert client_with(tokens[0]).post("/api/auth/logoutall/").status_code == 204
    assert [client_with(t).get(URL).status_code for t in tokens] == [401, 401, 401]
    assert client_with(managers).get(URL).status_code == 200


def test_a_manager_revokes_a_token_in_the_admin(client, manager, integration):
    stored, token = api_token_create(user=integration)
    client.force_login(manager)
    listing = client.get("/admin/knox/authtoken/")
    assert listing.status_code == 200 and token not in listing.content.decode()
    response = client.post("/admin/knox/authtoken/",
                           {"action": "revoke", "_selected_action": [stored.pk], "index": 0, "select_across": 0})
    assert response.status_code == 302
    assert client_with(token).get(URL).status_code == 401
    # And no token can be made (nor shown) in the admin: the operator's command does that
    assert client.get("/admin/knox/authtoken/add/").status_code == 403


def _create_token(*args: str) -> str:
    out = StringIO()
    call_command("drf_create_token", *args, stdout=out)
    return out.getvalue()


def test_drf_create_token_prints_a_working_token_once_and_reset_revokes_the_old_ones(integration):
    first = re.search(r"Generated token ([0-9a-f]{64}) for user shop-integration \(expires ", _create_token("shop-integration")).group(1)
    second = re.search(r"Generated token ([0-9a-f]{64})", _create_token("shop-integration")).group(1)
    assert first != second and client_with(first).get(URL).status_code == 200
    output = _create_token("-r", "shop-integration")
    third = re.search(r"Generated token ([0-9a-f]{64})", output).group(1)
    assert "Revoked 2 earlier token(s)" in output
    assert [client_with(t).get(URL).status_code for t in (first, second, third)] == [401, 401, 200]


def test_drf_create_token_refuses_an_unknown_user_and_a_lifetime_out_of_bounds(integration):
    with pytest.raises(CommandError, match="user nobody does not exist"):
        _create_token("nobody")
    with pytest.raises(CommandError, match="1 to 366 days"):
        _create_token("shop-integration", "--days", "1000")
    assert not AuthToken.objects.exists()


def test_the_migration_keeps_an_old_plain_key_working_and_deletes_it(integration):
    # Given a database from before the move: rest_framework.authtoken's table with a 40-character key
    key = "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, created timestamp, user_id integer)")
        cursor.execute("INSERT INTO authtoken_token VALUES (%s, %s, %s)", [key, timezone.now(), integration.pk])
    # When the migration runs
    # (the function reads only the schema editor's connection; SQLite opens no schema editor in a transaction)
    convert.tokens_convert(apps, SimpleNamespace(connection=connection))
    # Then the integration's key still works, now with an expiry, and the plain key is gone
    assert client_with(key).get(URL).status_code == 200
    assert AuthToken.objects.get(user=integration).expiry is not None
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM authtoken_token")
        assert cursor.fetchone()[0] == 0
