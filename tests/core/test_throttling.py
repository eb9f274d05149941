"""API throttles (issue 13): per token, per address across tokens, anonymous, in the error shape with
Retry-After; the health checks never throttled."""

import time

import pytest
from django.core.exceptions import ImproperlyConfigured
from rest_framework.test import APIClient

from config.settings.limits import throttle_rate
from core.selectors import TICK_TASK, task_heartbeat_name
from core.services import api_token_create, heartbeat_record
from core.throttling import WindowRateThrottle

pytestmark = pytest.mark.django_db

URL = "/api/customers/"


@pytest.fixture(autouse=True)
def _one_window(monkeypatch):
    # The counters run per clock minute: a test whose requests straddled a minute's end would start again
    # from zero half-way. Every request of a test falls in one window here.
    start = time.time()
    monkeypatch.setattr(WindowRateThrottle, "timer", staticmethod(lambda: start - start % 60 + 1))


@pytest.fixture
def rates(settings):
    def set_rates(*, token: str = "1000/min", address: str = "1000/min", anon: str = "1000/min") -> None:
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                                   "DEFAULT_THROTTLE_RATES": {"token": token, "address": address, "anon": anon}}
    return set_rates


def token_client(user, **extra) -> APIClient:
    client = APIClient(**extra)
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_create(user=user)[1]}")
    return client


def test_one_request_over_a_tokens_rate_is_a_429_in_the_error_shape(integration, rates):
    rates(token="3/min")
    client = token_client(integration)
    assert [client.get(URL).status_code for _ in range(3)] == [200, 200, 200]
    response = client.get(URL)
    assert response.status_code == 429
    body = response.json()
    assert body["detail"].startswith("Request was throttled.") and body["errors"] == [
        {"field": "", "message": body["detail"]}]
    assert response["Retry-After"] == "59"  # the window's end (the clock is at its first second)


def test_two_tokens_from_one_address_are_counted_apart(integration, rates):
    rates(token="3/min")
    first, second = token_client(integration), token_client(integration)
    assert [first.get(URL).status_code for _ in range(4)] == [200, 200, 200, 429]
    # The second token (same user, same address) has its own count
    assert [second.get(URL).status_code for _ in range(3)] == [200, 200, 200]


def test_the_address_rate_counts_every_token_from_it(integration, manager, rates):
    rates(token="100/min", address="5/min")
    clients = [token_client(integration), token_client(manager), token_client(integration)]
    answers = [clients[i % 3].get(URL).status_code for i in range(6)]
    assert answers == [200, 200, 200, 200, 200, 429]
    # Another address is not concerned
    assert token_client(integration, REMOTE_ADDR="10.7.7.7").get(URL).status_code == 200


def test_anonymous_requests_get_the_low_rate_and_wrong_tokens_count_as_anonymous(anon, rates):
    rates(anon="2/min")
    assert [anon.get("/api/schema/").status_code for _ in range(3)] == [200, 200, 429]
    # From another address: two guessed tokens are 401s, the third guess is throttled
    guesser = APIClient(REMOTE_ADDR="10.8.8.8")
    guesser.credentials(HTTP_AUTHORIZATION="Token " + "a" * 64)
    answers = [guesser.get(URL) for _ in range(3)]
    assert [a.status_code for a in answers] == [401, 401, 429]
    assert "wrong token" in answers[2].json()["detail"]


def test_health_checks_are_never_throttled(anon, rates):
    rates(token="1/min", address="1/min", anon="1/min")
    heartbeat_record(name=task_heartbeat_name(TICK_TASK), worker="w1")
    assert all(anon.get("/health/live/").status_code == 200 for _ in range(5))
    assert all(anon.get("/health/").status_code != 429 for _ in range(5))


def test_the_default_rates_leave_room_for_a_call_centre_and_an_integration(settings):
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    assert rates == {"token": "1200/min", "address": "6000/min", "anon": "60/min"}


@pytest.mark.parametrize("value", ["1200", "1200/week", "-5/min", "many/min", ""])
def test_a_malformed_rate_stops_start_up_naming_the_setting(value):
    with pytest.raises(ImproperlyConfigured, match="API_THROTTLE_TOKEN"):
        throttle_rate("API_THROTTLE_TOKEN", value)
