"""The site's root sends each role where it works; an agent refused the admin finds the way back."""

import pytest
from django.test import Client

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def client_for(user=None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def test_the_root_sends_a_manager_to_the_admin_an_agent_to_the_queue_and_anybody_else_to_the_login(manager, agent):
    assert client_for(manager).get("/").url == "/admin/"
    assert client_for(agent).get("/").url == "/agent/"
    assert client_for().get("/").url == "/accounts/login/?next=/"
    # A logged-in account with no role is told why, not sent round in circles
    nobody = client_for(UserFactory(username="no-role")).get("/")
    assert nobody.status_code == 403
    # The root only shows the way: anything but GET is refused
    assert client_for(manager).post("/").status_code == 405


def test_the_admins_view_site_link_is_the_root(manager):
    page = client_for(manager).get("/admin/").content.decode()
    assert 'href="/"' in page


def test_an_agent_refused_the_admin_gets_a_link_back_to_the_queue(agent):
    client = client_for(agent)
    page = client.get("/admin/", follow=True).content.decode()
    assert 'id="back-to-work"' in page and 'href="/"' in page
    assert client.get("/").url == "/agent/"


def test_admin_pages_name_an_icon_so_browsers_do_not_ask_for_a_missing_favicon(manager):
    for url in ("/admin/", "/admin/crm/customer/", "/admin/login/"):
        page = client_for(manager if url != "/admin/login/" else None).get(url).content.decode()
        assert '<link rel="icon" href="data:,">' in page, url
        assert "<title>" in page  # Django's own base_site still renders around it
