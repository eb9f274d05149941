"""Logins that resist guessing (issue 13): lockout per account and per address on the agents' login page and
the admin's, a manager's unlock, the client address behind proxies, and 12-character passwords."""

import datetime as dt
import os
import subprocess
import sys

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.test import Client, RequestFactory

from config.settings.limits import bounded
from core.http import client_address
from crm.services.demo_data import DEMO_LOGINS
from tests.conftest import ROOT
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-staple"  # tests.factories.UserFactory's
LOGIN, ADMIN_LOGIN = "/accounts/login/", "/admin/login/"


def log_in(client: Client, username: str, password: str, *, url: str = LOGIN, **extra):
    return client.post(url, {"username": username, "password": password}, **extra)


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_five_wrong_passwords_lock_the_account_even_against_the_right_one(client, agent, settings):
    # Given the default limit of 5 failures per account
    assert settings.AXES_FAILURE_LIMIT == 5
    for _ in range(4):
        assert log_in(client, "agent", "wrong-password-guess").status_code == 200
    # When the fifth wrong password is tried, then the person gets the lockout page
    fifth = log_in(client, "agent", "wrong-password-guess")
    assert fifth.status_code == 429
    # And then the right password is refused too, with a clear page and how long to wait
    response = log_in(client, "agent", PASSWORD)
    assert response.status_code == 429 and not logged_in(client)
    assert "Too many failed logins" in response.content.decode()
    assert "Try again in 15 minutes" in response.content.decode()
    assert response["Retry-After"] == str(15 * 60)
    # And from another address as well: the account is locked, not the address
    assert log_in(Client(), "agent", PASSWORD, REMOTE_ADDR="10.1.2.3").status_code == 429


def test_the_lock_lifts_after_the_cool_off(client, agent):
    for _ in range(5):
        log_in(client, "agent", "wrong-password-guess")
    assert log_in(client, "agent", PASSWORD).status_code == 429
    # When the cool-off (15 minutes) has passed since the last failure
    AccessAttempt.objects.update(attempt_time=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=16))
    # Then the right password works again
    assert log_in(client, "agent", PASSWORD).status_code == 302 and logged_in(client)


def test_failures_for_many_accounts_from_one_address_lock_the_address(client, settings, agent):
    # Given a lower address limit, and password spraying over several accounts from one address
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 3
    for name in ("alice", "bob", "carol"):
        UserFactory(username=name)
        assert log_in(client, name, "wrong-password-guess").status_code in (200, 429)
    # When an account with no failure of its own logs in from that address, it is refused
    assert log_in(client, "agent", PASSWORD).status_code == 429 and not logged_in(client)
    # And the same account from another address is fine: the address is locked, not the account
    other = Client(REMOTE_ADDR="10.9.9.9")
    assert log_in(other, "agent", PASSWORD).status_code == 302 and logged_in(other)


def test_a_few_typos_behind_a_shared_address_lock_nobody_else(client, settings, agent):
    # Given a call centre behind one address: four agents each mistype once (fewer than the address limit)
    for name in ("a1", "a2", "a3", "a4"):
        UserFactory(username=name)
        assert log_in(client, name, "typo-typo-typo").status_code == 200
    # Then a fifth agent still logs in
    assert log_in(client, "agent", PASSWORD).status_code == 302


def test_the_admin_login_locks_too(client, manager):
    for _ in range(5):
        log_in(client, "manager", "wrong-password-guess", url=ADMIN_LOGIN)
    response = log_in(client, "manager", PASSWORD, url=ADMIN_LOGIN)
    assert response.status_code == 429 and not logged_in(client)
    assert "Too many failed logins" in response.content.decode()


def test_a_manager_unlocks_a_locked_agent_who_then_logs_in(client, agent, manager):
    # Given an agent locked out from two addresses
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.2", "10.0.0.2", "10.0.0.2"):
        log_in(Client(), "agent", "wrong-password-guess", REMOTE_ADDR=address)
    assert log_in(Client(), "agent", PASSWORD).status_code == 429
    # When a manager (not a superuser) selects one of the agent's rows and runs "Unlock" in the admin
    assert not manager.is_superuser
    client.force_login(manager)  # the unlock is the subject here, not the manager's login
    listing = client.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200 and "Unlock the selected accounts" in listing.content.decode()
    row = AccessAttempt.objects.filter(username="agent").first()
    response = client.post("/admin/axes/accessattempt/",
                           {"action": "unlock", "_selected_action": [row.pk], "index": 0, "select_across": 0})
    assert response.status_code == 302
    # Then every failure of the agent is gone and the agent logs in
    assert not AccessAttempt.objects.filter(username="agent").exists()
    agent_client = Client()
    assert log_in(agent_client, "agent", PASSWORD).status_code == 302 and logged_in(agent_client)


def test_an_agent_cannot_see_or_unlock_attempts(client, agent):
    agent.is_staff = True
    agent.save()
    client.force_login(agent)
    assert client.get("/admin/axes/accessattempt/").status_code == 302  # to the admin's login page


def test_the_forwarded_header_is_ignored_unless_proxies_are_configured(settings):
    factory = RequestFactory()
    request = factory.get("/", REMOTE_ADDR="10.0.0.9", HTTP_X_FORWARDED_FOR="1.2.3.4, 5.6.7.8")
    # By default (no proxy) the header is whatever the client wrote: the connection's address counts
    assert client_address(request) == "10.0.0.9"
    # Behind one proxy, the address it appended (the last entry) counts, not what the client wrote before it
    settings.TRUSTED_PROXY_COUNT = 1
    assert client_address(request) == "5.6.7.8"
    settings.TRUSTED_PROXY_COUNT = 2
    assert client_address(request) == "1.2.3.4"
    # And garbage where an address should be falls back to the connection
    settings.TRUSTED_PROXY_COUNT = 1
    assert client_address(factory.get("/", REMOTE_ADDR="10.0.0.9", HTTP_X_FORWARDED_FOR="nonsense")) == "10.0.0.9"


def test_a_spoofed_forwarded_header_does_not_escape_the_address_lock(client, settings, agent):
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 2
    for i, name in enumerate(("x1", "x2")):
        UserFactory(username=name)
        log_in(client, name, "wrong-password-guess", HTTP_X_FORWARDED_FOR=f"192.0.2.{i}")
    assert log_in(client, "agent", PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.77").status_code == 429


@pytest.mark.parametrize("password, error", [
    ("Xq7-short-1", "too short"),              # 11 characters
    ("password1234", "too common"),
    ("839201748392017", "entirely numeric"),
])
def test_weak_passwords_are_refused(password, error):
    user = UserFactory.build(username="someone")
    with pytest.raises(ValidationError, match=error):
        validate_password(password, user)


def test_twelve_characters_are_enough_and_the_demo_logins_pass():
    validate_password("Xq7-plenty-1", UserFactory.build(username="someone"))
    for username, password, _ in DEMO_LOGINS:
        validate_password(password, UserFactory.build(username=username, email=f"{username}@example.com"))


def test_limits_out_of_bounds_stop_start_up():
    with pytest.raises(ImproperlyConfigured, match="AXES_FAILURE_LIMIT=0 is outside 1..100"):
        bounded("AXES_FAILURE_LIMIT", 0, low=1, high=100)


def test_production_refuses_a_minimum_password_length_under_12():
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG",)}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", DJANGO_PROFILE="production", SECRET_KEY="x" * 60,
               ALLOWED_HOSTS="winback.example.com", PASSWORD_MIN_LENGTH="10")
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode != 0 and "PASSWORD_MIN_LENGTH=10: production accepts no less than 12" in result.stderr
