"""The API's token authentication: one statement for the user and their roles, same answers as DRF's."""

import pytest
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from core.authentication import user_by_token
from core.roles import AGENTS, MANAGERS, user_is_agent, user_is_manager
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
    key_both, key_nobody = Token.objects.create(user=both).key, Token.objects.create(user=nobody).key
    # when the tokens are read
    with django_assert_num_queries(1):
        user = user_by_token(key=key_both)
        # then the roles come with the user: checking them asks nothing more
        assert user_is_agent(user) and user_is_manager(user)
    assert user.pk == both.pk and user.username == "both" and user.date_joined == both.date_joined
    assert user_by_token(key=key_nobody).role_names == frozenset()
    assert not user_is_agent(user_by_token(key=key_nobody))
    assert user_by_token(key="0" * 40) is None


def test_the_api_refuses_a_wrong_token_and_an_inactive_user_and_serves_a_good_one(agent):
    key = Token.objects.create(user=agent).key
    assert client_with(key).get("/api/me/callbacks/").status_code == 200
    wrong = client_with("f" * 40).get("/api/me/callbacks/")
    assert wrong.status_code == 401 and wrong.json()["detail"] == "Invalid token."
    agent.is_active = False
    agent.save()
    inactive = client_with(key).get("/api/me/callbacks/")
    assert inactive.status_code == 401 and inactive.json()["detail"] == "User inactive or deleted."


def test_roles_come_from_the_token_read_a_user_outside_the_agents_is_refused_the_queue(integration):
    key = Token.objects.create(user=integration).key
    refused = client_with(key).post("/api/queue/next/")
    assert refused.status_code == 403 and "agents and managers" in refused.json()["detail"]
