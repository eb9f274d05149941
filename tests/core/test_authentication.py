"""The API's token authentication: one statement for the token, its user and their roles, same answers as DRF's."""

import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from core.authentication import user_by_token
from core.roles import AGENTS, MANAGERS, user_is_agent, user_is_manager
from core.services import api_token_create
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def client_with(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def test_a_token_brings_its_user_and_every_group_of_theirs(django_assert_num_queries):
    # given a user in two groups, and one in none
    both = UserFactory(username="both")
    both.groups.add(Group.objects.get(name=AGENTS), Group.objects.get(name=MANAGERS))
    nobody = UserFactory(username="nobody")
    key_both, key_nobody = api_token_create(user=both)[1], api_token_create(user=nobody)[1]
    # when the tokens are read
    with django_assert_num_queries(1):
        user = user_by_token(token=key_both)
        # then the roles come with the user: checking them asks nothing more
        assert user_is_agent(user) and user_is_manager(user)
    assert user.pk == both.pk and user.username == "both" and user.date_joined == both.date_joined
    assert user_by_token(token=key_nobody).role_names == frozenset()
    assert not user_is_agent(user_by_token(token=key_nobody))
    assert user_by_token(token="0" * 64) is None
    # and a token that shares only its first characters (the indexed part) with a real one is no token
    assert user_by_token(token=key_both[:15] + "0" * 49) is None


def test_an_authenticated_api_request_reads_the_token_in_one_statement(agent, django_assert_num_queries):
    key = api_token_create(user=agent)[1]
    client = client_with(key)
    client.get("/api/me/callbacks/")  # warm: the first request loads the URL conf and the views
    with django_assert_num_queries(2):  # the token with its user and groups; the callbacks
        assert client.get("/api/me/callbacks/").status_code == 200


def test_the_api_refuses_a_wrong_token_and_an_inactive_user_and_serves_a_good_one(agent):
    key = api_token_create(user=agent)[1]
    assert client_with(key).get("/api/me/callbacks/").status_code == 200
    wrong = client_with("f" * 64).get("/api/me/callbacks/")
    assert wrong.status_code == 401 and wrong.json()["detail"] == "Invalid token."
    agent.is_active = False
    agent.save()
    inactive = client_with(key).get("/api/me/callbacks/")
    assert inactive.status_code == 401 and inactive.json()["detail"] == "User inactive or deleted."


def test_roles_come_from_the_token_read_a_user_outside_the_agents_is_refused_the_queue(integration):
    key = api_token_create(user=integration)[1]
    refused = client_with(key).post("/api/queue/next/")
    assert refused.status_code == 403 and "agents and managers" in refused.json()["detail"]
