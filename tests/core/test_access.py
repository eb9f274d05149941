import re
from io import StringIO

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from core.selectors import TICK_TASK, task_heartbeat_name
from core.services import heartbeat_record

pytestmark = pytest.mark.django_db

API_ENDPOINTS = ["/api/customers/", "/api/orders/", "/api/contacts/", "/api/complaints/", "/api/feedback/",
                 "/api/customers/X/", "/api/orders/X/", "/api/customers/X/cancel/"]


@pytest.mark.parametrize("url", API_ENDPOINTS)
def test_every_api_endpoint_refuses_anonymous_calls(anon, url):
    assert anon.get(url).status_code == 401
    assert anon.post(url, {}, format="json").status_code == 401


@pytest.mark.parametrize("url", ["/api/schema/", "/api/docs/", "/health/", "/health/live/"])
def test_docs_schema_and_health_are_public(anon, url):
    heartbeat_record(name=task_heartbeat_name(TICK_TASK), worker="w1")  # a running beat and worker
    assert anon.get(url).status_code == 200


@pytest.mark.parametrize("url", ["/api/customers/", "/api/orders/", "/api/complaints/"])
def test_agents_cannot_read_the_crm_api_but_managers_can(agent, manager, url):
    client = APIClient()
    client.force_authenticate(agent)
    assert client.get(url).status_code == 403
    client.force_authenticate(manager)
    assert client.get(url).status_code == 200


def test_admin_is_for_managers_not_agents(client, agent, manager):
    agent.is_staff = True  # even a mistakenly ticked staff flag does not let an agent in
    agent.save()
    client.force_login(agent)
    assert client.get("/admin/").status_code == 302
    client.force_login(manager)
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/crm/customer/").status_code == 200


def test_drf_create_token_gives_an_integration_a_working_token(integration):
    out = StringIO()
    call_command("drf_create_token", integration.username, stdout=out)
    token = re.search(r"Generated token (\S+) for user shop-integration", out.getvalue()).group(1)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/customers/").status_code == 200
