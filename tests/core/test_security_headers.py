"""The Content-Security-Policy and Permissions-Policy headers on every kind of response (no browser: the
browser's side is tests/core/test_csp_browser.py), and no template that needs the policy loosened."""

import re

import pytest
from django.conf import settings
from django.test import Client

from tests.conftest import ROOT
from tests.winback.test_queue_access import case_now
from touchpoints.models import CadenceStep
from touchpoints.services.links import unsubscribe_url
from winback.services.queue import case_claim_next

pytestmark = pytest.mark.django_db

DENIED_FEATURES = ("camera", "microphone", "geolocation", "payment", "usb", "serial", "hid", "midi",
                   "display-capture", "publickey-credentials-get")
# What a template must not hold: the policy refuses inline script, event handlers and inline styles.
INLINE = {
    "an inline <script>": re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I),
    "an event handler attribute": re.compile(r"<[^>]*\son[a-z]+\s*=", re.I),
    "a style attribute": re.compile(r"<[^>]*\sstyle\s*=", re.I),
    "a <style> block": re.compile(r"<style\b", re.I),
    "a javascript: URL": re.compile(r"javascript:", re.I),
}


def policy_of(response) -> dict[str, list[str]]:
    directives = [d.split() for d in response["Content-Security-Policy"].split(";") if d.strip()]
    return {name: values for name, *values in directives}


def assert_strict(response, what: str) -> None:
    policy = policy_of(response)
    assert policy["default-src"] == ["'self'"], what
    for directive in ("script-src", "style-src"):
        assert policy[directive] == ["'self'"], (what, directive, policy[directive])
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"], what
    assert policy["base-uri"] == ["'self'"] and policy["form-action"] == ["'self'"], what
    assert policy["img-src"] == ["'self'", "data:"], what
    features = dict(item.split("=", 1) for item in response["Permissions-Policy"].split(", "))
    for feature in DENIED_FEATURES:
        assert features.get(feature) == "()", (what, feature)
    assert response["X-Content-Type-Options"] == "nosniff", what


@pytest.fixture
def pages(client, agent, manager) -> dict[str, tuple[Client, str]]:
    """Every kind of page, each with a client logged in as someone who may see it."""
    case = case_now(priority=100)
    assert case_claim_next(agent=agent) == case
    as_agent, as_manager = Client(), Client()
    as_agent.force_login(agent)
    as_manager.force_login(manager)
    step = CadenceStep.objects.exclude(template="").first()
    unsubscribe = unsubscribe_url(customer_id=case.customer_id, touchpoint_id=0)
    return {
        "login": (client, "/accounts/login/"),
        "queue": (as_manager, "/agent/"),  # the agent, holding a case, is sent on to it
        "case": (as_agent, f"/agent/case/{case.pk}/"),
        "callbacks": (as_agent, "/agent/callbacks/"),
        "admin login": (client, "/admin/login/"),
        "admin index": (as_manager, "/admin/"),
        "customers": (as_manager, "/admin/crm/customer/"),
        "customer": (as_manager, f"/admin/crm/customer/{case.customer_id}/change/"),
        "kpis": (as_manager, "/admin/metrics/metricsnapshot/"),
        "email preview": (as_manager, f"/admin/touchpoints/cadence/step/{step.pk}/preview/"),
        "api docs": (client, "/api/docs/"),
        "unsubscribe": (client, unsubscribe.removeprefix(settings.SITE_URL.rstrip("/"))),
        "not found": (client, "/no-such-page/"),
    }


def test_every_html_page_carries_the_strict_policy_and_holds_no_inline_script_or_style(pages):
    for name, (client, url) in pages.items():
        # When the page is asked for
        response = client.get(url)
        # Then it is an HTML page under the strict policy, with nothing inline that the policy would refuse
        assert response.status_code in (200, 404), (name, response.status_code)
        assert response["Content-Type"].startswith("text/html"), name
        assert_strict(response, name)
        html = response.content.decode()
        for what, pattern in INLINE.items():
            assert not pattern.search(html), f"{name} ({url}) has {what}: {pattern.search(html)[0]}"


@pytest.mark.parametrize("url", ["/api/customers/", "/api/schema/", "/api/docs/?script=", "/health/live/",
                                 "/api/no-such-endpoint/"])
def test_api_and_other_responses_carry_the_same_headers(api, url):
    # JSON, YAML or a script: a browser that opens one directly runs nothing of it either, and never sniffs it
    # into HTML
    response = api.get(url)
    assert response.status_code in (200, 404), (url, response.status_code)
    assert_strict(response, url)


def test_no_template_needs_inline_script_or_style():
    # Emails are exempt: they are not served by the site (their preview has a policy of its own) and mail
    # clients need inline styles.
    offenders = []
    for template in sorted((ROOT / "templates").rglob("*.html")):
        if "emails" in template.relative_to(ROOT / "templates").parts:
            continue
        text = template.read_text()
        offenders += [f"{template.relative_to(ROOT)}: {what}" for what, pattern in INLINE.items() if pattern.search(text)]
    assert not offenders, "\n".join(offenders) + "\nMove scripts to static/<app>/*.js and styles to static/<app>/*.css."

