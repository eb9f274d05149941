"""A manager's optional second step (issue 13): set up a TOTP authenticator, then every login asks for its
code; managers without one log in as before."""

import re
import time

import pytest
from axes.models import AccessAttempt
from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-staple"  # tests.factories.UserFactory's
ENROL, ADMIN_LOGIN = "/accounts/authenticator/", "/admin/login/"


def code(device: TOTPDevice, *, steps_ahead: int = 0) -> str:
    """The code an authenticator app shows (``steps_ahead`` 30-second steps later: a code is used once)."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + steps_ahead * device.step
    return f"{totp.token():0{device.digits}d}"


def enrolled(manager) -> TOTPDevice:
    return TOTPDevice.objects.create(user=manager, name="phone", confirmed=True)


def admin_log_in(client: Client, password: str = PASSWORD, otp_token: str = ""):
    return client.post(f"{ADMIN_LOGIN}?next=/admin/", {"username": "manager", "password": password,
                                                       "otp_token": otp_token, "next": "/admin/"})


@pytest.fixture(autouse=True)
def _no_back_off(settings):
    # django-otp waits 1 s, 2 s, 4 s... after each wrong code; the tests that try a right code after a wrong
    # one would otherwise have to sleep. The back-off itself is django-otp's and tested there.
    settings.OTP_TOTP_THROTTLE_FACTOR = 0


def test_a_manager_sets_up_an_authenticator_confirmed_by_a_code(client, manager):
    client.force_login(manager)  # set-up is the subject, not the login
    # Given the set-up page: a QR code as inline SVG, the otpauth URI and the secret as text
    page = client.get(ENROL)
    body = page.content.decode()
    assert page.status_code == 200 and "<svg" in body and "otpauth://totp/Win-back%3Amanager?secret=" in body
    device = TOTPDevice.objects.get(user=manager)
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', body).group(1)
    assert not device.confirmed and len(secret) == 32
    # And reloading it shows the same secret (a scanned code stays valid)
    assert secret in client.get(ENROL).content.decode()
    # When a wrong code is given, then it is refused with a clear message and nothing is active
    wrong = client.post(ENROL, {"token": "000000" if code(device) != "000000" else "111111"})
    assert wrong.status_code == 400 and "That code is not right" in wrong.content.decode()
    assert not TOTPDevice.objects.get(pk=device.pk).confirmed
    # When the app's current code is given, then the device is active and this session stays in the admin
    done = client.post(ENROL, {"token": code(device)}, follow=True)
    assert "Your authenticator is set up" in done.content.decode()
    assert TOTPDevice.objects.get(pk=device.pk).confirmed
    assert client.get("/admin/").status_code == 200


def test_once_set_up_the_admin_asks_for_the_code_after_the_password(manager):
    device = enrolled(manager)
    client = Client()
    # The password alone is not enough
    response = admin_log_in(client)
    assert response.status_code == 200 and "Enter the code your authenticator app shows" in response.content.decode()
    assert client.get("/admin/").status_code == 302
    # A wrong code is refused
    response = admin_log_in(client, otp_token="12345" if code(device) != "12345" else "54321")
    assert "That authenticator code is not right" in response.content.decode()
    # The right code lets the manager in
    response = admin_log_in(client, otp_token=code(device))
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200


def test_the_agents_login_page_asks_for_the_code_too(manager):
    device = enrolled(manager)
    client = Client()
    refused = client.post("/accounts/login/", {"username": "manager", "password": PASSWORD})
    assert refused.status_code == 200 and "_auth_user_id" not in client.session
    accepted = client.post("/accounts/login/", {"username": "manager", "password": PASSWORD, "otp_token": code(device)})
    assert accepted.status_code == 302 and client.get("/admin/").status_code == 200


def test_a_manager_without_an_authenticator_logs_in_as_before(client, manager):
    response = client.post(f"{ADMIN_LOGIN}?next=/admin/", {"username": "manager", "password": PASSWORD, "next": "/admin/"})
    assert response.status_code == 302 and client.get("/admin/").status_code == 200


def test_a_session_that_never_gave_the_code_is_sent_back_to_the_login(client, manager):
    # Given a manager's session from before the set-up (a password-only login on another computer)
    client.force_login(manager)
    enrolled(manager)
    # Then the admin and its KPI page send it to the login page
    assert client.get("/admin/").status_code == 302
    assert client.get("/admin/metrics/metricsnapshot/").status_code == 302
    # And the set-up page cannot replace the device
    assert "is set up for your account" in client.get(ENROL).content.decode()
    assert TOTPDevice.objects.filter(user=manager).count() == 1


def test_wrong_codes_count_toward_the_lockout(manager):
    device = enrolled(manager)
    client = Client()
    wrong = "000000" if code(device) != "000000" else "111111"
    for _ in range(5):
        admin_log_in(client, otp_token=wrong)
    assert AccessAttempt.objects.get(username="manager").failures_since_start == 5
    # The right password and the right code are then refused until a manager unlocks or the wait is over
    response = admin_log_in(client, otp_token=code(device))
    assert response.status_code == 429 and client.get("/admin/").status_code == 302


def test_agents_do_not_set_up_an_authenticator_here(client, agent):
    client.force_login(agent)
    assert client.get(ENROL).status_code == 403
    assert not TOTPDevice.objects.exists()
