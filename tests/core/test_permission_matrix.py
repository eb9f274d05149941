"""Every route of the URL configuration x every kind of caller: anonymous, an agent, another agent, a manager,
an integration. The routes are read from the URL configuration, so a new route fails this test until its
access is declared in POLICY below (a route nobody thought about is a route anybody may call).

"Allowed" means the request got past authentication and authorisation (any answer but 401, 403, a
redirect to a login page, or a 404 on an object the caller may not see); with an empty body an allowed
write answers 400. Each caller's requests run in a transaction rolled back afterwards, so one caller's
writes (a claim, a release) never change what the next one sees.
A 405 (the route does not take that method) says nothing about access and is not counted.
"""

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice
from django.core.management import call_command
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from core.roles import AGENTS
from core.selectors import TICK_TASK, task_heartbeat_name
from core.services import heartbeat_record
from tests.factories import (
    AcquisitionSpendFactory, ComplaintFactory, ContactFactory, CouponFactory, FeedbackFactory, OfferFactory, OrderFactory,
    TouchpointFactory, WinbackCaseFactory,
)
from touchpoints.services.links import answer_token, score_links, unsubscribe_url
from winback.models import RuleTuning

pytestmark = pytest.mark.django_db

CALLERS = ("anonymous", "agent", "other_agent", "manager", "integration")
EVERYONE = frozenset(CALLERS)
NOBODY = frozenset()
STAFF = frozenset({"agent", "other_agent", "manager"})
PEOPLE = frozenset({"agent", "other_agent", "manager", "integration"})
MANAGER = frozenset({"manager"})
DATA = frozenset({"manager", "integration"})  # the crm API: every customer's data
# Only the integration calls with an API token here; the people have sessions.
TOKEN_HOLDERS = frozenset({"integration"})
# The case held by "agent": the other agent is refused it (a 404: whose cases exist is not theirs to know);
# a manager sees every case.
HOLDER = frozenset({"agent", "manager"})


@dataclass(frozen=True)
class Rule:
    read: frozenset  # GET
    write: frozenset  # POST / PUT / PATCH / DELETE, where the route takes them


# Route name -> who may call it. Names come from the URL configuration (namespace:name).
POLICY: dict[str, Rule] = {
    # The root sends each role where it works (anybody else to the login page).
    "home": Rule(EVERYONE, NOBODY),
    "health": Rule(EVERYONE, NOBODY),
    "health-live": Rule(EVERYONE, NOBODY),
    # Django's own account pages: logging in and resetting a password are for anybody.
    "login": Rule(EVERYONE, EVERYONE),
    "logout": Rule(EVERYONE, EVERYONE),
    "password_reset": Rule(EVERYONE, EVERYONE),
    "password_reset_done": Rule(EVERYONE, EVERYONE),
    "password_reset_confirm": Rule(EVERYONE, EVERYONE),
    "password_reset_complete": Rule(EVERYONE, EVERYONE),
    # A session's pages: an integration calls with a token, never with a session.
    "password_change": Rule(STAFF, STAFF),
    "password_change_done": Rule(STAFF, STAFF),
    # The agent pages: agents and managers (who may sit in on the queue); a case only for its holder.
    "agent:home": Rule(STAFF, STAFF),
    "agent:next": Rule(STAFF, STAFF),
    "agent:callbacks": Rule(STAFF, STAFF),
    "agent:case": Rule(frozenset({"agent"}), frozenset({"agent"})),
    "agent:release": Rule(frozenset({"agent"}), frozenset({"agent"})),
    # Choosing an offer on the held case: its code before the call is saved (POST only).
    "agent:case-coupon": Rule(frozenset({"agent"}), frozenset({"agent"})),
    # The links in emails: the signed token is the authentication, whoever clicks.
    "touchpoints:unsubscribe": Rule(EVERYONE, EVERYONE),
    "touchpoints:score": Rule(EVERYONE, EVERYONE),
    # The answer's own token (in the body) authorises a comment.
    "touchpoints:comment": Rule(EVERYONE, EVERYONE),
    # The language chooser: a person's stored choice, anybody else's cookie (POST only).
    "language-set": Rule(EVERYONE, EVERYONE),
    # A manager sets up the authenticator app for the second login step.
    "totp-enrol": Rule(MANAGER, MANAGER),
    # Revoking the calling token (or all of its user's): whoever holds one.
    "api-logout": Rule(NOBODY, TOKEN_HOLDERS),
    "api-logout-all": Rule(NOBODY, TOKEN_HOLDERS),
    "schema": Rule(EVERYONE, NOBODY),
    "api-docs": Rule(EVERYONE, NOBODY),
    "api-root": Rule(PEOPLE, NOBODY),
    # The queue API the agent page uses.
    "queue-next": Rule(STAFF, STAFF),
    "my-callbacks": Rule(STAFF, STAFF),
    "case-disposition": Rule(frozenset({"agent"}), frozenset({"agent"})),
    "case-release": Rule(frozenset({"agent"}), frozenset({"agent"})),
    "case-list": Rule(STAFF, NOBODY),
    "case-detail": Rule(HOLDER, NOBODY),
    # Agents see the offers on the case page; the offer records themselves are the managers'.
    "offer-list": Rule(MANAGER, MANAGER),
    "offer-detail": Rule(MANAGER, MANAGER),
    "coupon-list": Rule(MANAGER, MANAGER),
    "coupon-detail": Rule(MANAGER, MANAGER),
    "customer-lifecycle": Rule(DATA, NOBODY),
    "customer-list": Rule(DATA, DATA),
    "customer-detail": Rule(DATA, DATA),
    "customer-cancel": Rule(DATA, DATA),
    "order-list": Rule(DATA, DATA),
    "order-detail": Rule(DATA, DATA),
    "contact-list": Rule(DATA, DATA),
    "contact-detail": Rule(DATA, DATA),
    "complaint-list": Rule(DATA, DATA),
    "complaint-detail": Rule(DATA, DATA),
    "feedback-list": Rule(DATA, DATA),
    "feedback-detail": Rule(DATA, DATA),
    # Acquisition spend is an input like the orders (integrations push it, managers enter it); a wrong one
    # is deleted, not kept.
    "acquisition-spend-list": Rule(DATA, DATA),
    "acquisition-spend-detail": Rule(DATA, DATA),
    "metrics": Rule(MANAGER, NOBODY),
    "metrics-series": Rule(MANAGER, NOBODY),
    "metrics-cohorts": Rule(MANAGER, NOBODY),
    "metrics-predictions": Rule(MANAGER, NOBODY),
    # The admin's own door.
    "admin:login": Rule(EVERYONE, EVERYONE),
    "admin:logout": Rule(EVERYONE, EVERYONE),
}
# Rows only the service writes (audit, events, login attempts, tokens, the suppression list...): read-only.
WRITTEN_BY_THE_SERVICE = "|".join((
    "crm_auditentry", "crm_order", "crm_suppressionentry", "metrics_metricsnapshot", "touchpoints_touchpoint",
    "winback_coupon", "winback_disposition", "winback_lifecycleevent", "winback_lifecyclescanstate",
    "winback_caseevent", "axes_accessattempt", "axes_accesslog", "axes_accessfailurelog", "knox_authtoken",
    "predictions_modelfit", "winback_ruletuning",
))
# Every other admin route: managers only, and within the admin a manager is refused these (name patterns):
ADMIN = Rule(MANAGER, MANAGER)
ADMIN_REFUSED_TO_MANAGERS = [
    # A manager unlocks a locked-out login (deleting its attempt rows) and revokes an API token.
    (re.compile(r"^admin:(axes_accessattempt|knox_authtoken)_delete$"), MANAGER, MANAGER),
    # Acquisition spend is an input, not history: a manager deletes one entered by mistake (audited).
    (re.compile(r"^admin:crm_acquisitionspend_delete$"), MANAGER, MANAGER),
    # History feeds the KPIs: nobody deletes a business record from the admin.
    (re.compile(r"_delete$"), NOBODY, NOBODY),
    # Users, API tokens and the service's own bookkeeping are the superuser's.
    # So are the authenticator devices (a lost phone: a superuser removes the device).
    # (The business settings are core's too, and a manager's: margin, discount rate, currency.)
    (re.compile(r"^admin:(auth|authtoken|core(?!_businesssettings)|otp_totp)_"), NOBODY, NOBODY),
    # Beat's schedules are its internals (config/admin.py): managers see the periodic tasks only.
    (re.compile(r"^admin:django_celery_beat_(clocked|crontab|interval|solar)schedule_"), NOBODY, NOBODY),
    # Written by the service only: a manager reads them.
    (re.compile(rf"^admin:({WRITTEN_BY_THE_SERVICE})_add$"), NOBODY, NOBODY),
    (re.compile(rf"^admin:({WRITTEN_BY_THE_SERVICE}|winback_dormancypolicy|winback_winbackcase)_change$"),
     MANAGER, NOBODY),
    # Cases are opened by the lifecycle; settings are one row each, made by a migration.
    (re.compile(r"^admin:(winback_winbackcase|core_businesssettings|touchpoints_touchpointsettings"
                r"|winback_callsettings)_add$"), NOBODY, NOBODY),
    # A cadence's steps are added on the cadence's page; a step's own page holds its texts per language.
    (re.compile(r"^admin:touchpoints_cadencestep_add$"), NOBODY, NOBODY),
    # No model here has a page on a public site.
    (re.compile(r"^admin:view_on_site$"), NOBODY, NOBODY),
]


def _autocomplete_query() -> str | None:
    """The admin's autocomplete answers only for a field some admin page completes."""
    from django.contrib import admin

    for model, model_admin in admin.site._registry.items():
        for field in model_admin.autocomplete_fields:
            return f"?app_label={model._meta.app_label}&model_name={model._meta.model_name}&field_name={field}"
    return None


def _admin_rule(route_name: str) -> Rule:
    if route_name == "admin:autocomplete" and _autocomplete_query() is None:
        return Rule(NOBODY, NOBODY)  # no page completes a field: refused to all
    for pattern, read, write in ADMIN_REFUSED_TO_MANAGERS:
        if pattern.search(route_name):
            return Rule(read, write)
    return ADMIN

LOGIN_PATHS = ("/accounts/login/", "/admin/login/")
DENIED = {401, 403}


@dataclass(frozen=True)
class Route:
    name: str
    pattern: str
    kwargs: tuple[str, ...]
    methods: tuple[str, ...]

    @property
    def is_admin(self) -> bool:
        """Behind the admin login: every admin route but its door (declared in POLICY)."""
        return self.name.startswith("admin:") and self.name not in POLICY


def _methods(pattern: URLPattern) -> tuple[str, ...]:
    callback = pattern.callback
    actions = getattr(callback, "actions", None)
    if actions:  # a DRF viewset route: the methods it maps
        return tuple(m.upper() for m in actions if m != "options")
    cls = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if cls is not None:
        return tuple(m.upper() for m in cls.http_method_names if m not in ("options", "head") and hasattr(cls, m))
    return ("GET", "POST")  # a function view: ask both, it answers 405 to the one it does not take


def _walk(patterns, prefix: str = "", namespace: str = "", kwargs: tuple[str, ...] = ()) -> Iterator[Route]:
    for p in patterns:
        names = kwargs + tuple(p.pattern.regex.groupindex)
        if isinstance(p, URLResolver):
            ns = f"{namespace}{p.namespace}:" if p.namespace else namespace
            yield from _walk(p.url_patterns, prefix + str(p.pattern), ns, names)
        elif p.name:
            yield Route(f"{namespace}{p.name}", prefix + str(p.pattern), names, _methods(p))


def all_routes() -> list[Route]:
    """One route per name and set of arguments (the format-suffix twins of the API are kept: .json)."""
    seen, routes = set(), []
    for route in _walk(get_resolver().url_patterns):
        key = (route.name, route.kwargs)
        if key not in seen:
            seen.add(key)
            routes.append(route)
    return routes


ROUTES = all_routes()


def test_every_route_has_a_declared_policy():
    # Given the URL configuration, when a route is added, then its access must be declared here.
    undeclared = sorted({r.name for r in ROUTES if not r.is_admin and r.name not in POLICY})
    assert len([r for r in ROUTES if r.is_admin]) > 100  # the admin's routes are found too
    assert not undeclared, f"declare who may call these routes in POLICY: {undeclared}"
    stale = sorted(set(POLICY) - {r.name for r in ROUTES})
    assert not stale, f"POLICY names routes that no longer exist: {stale}"


def _token_for(user) -> str:
    # The operator's command, as an integration's token is really made (whatever the token model is).
    out = io.StringIO()
    call_command("drf_create_token", user.username, stdout=out)
    return re.search(r"\b([0-9a-f]{40,})\b", out.getvalue()).group(1)


@pytest.fixture
def world(agent, manager, integration, django_user_model):
    from django.contrib.auth.models import Group
    from django.contrib.auth.tokens import default_token_generator
    from django.utils.http import urlsafe_base64_encode
    from django.utils.encoding import force_bytes

    heartbeat_record(name=task_heartbeat_name(TICK_TASK), worker="w1")  # /health/ sees a running beat
    other = django_user_model.objects.create_user("other-agent", password="not-used-here-1234")
    other.groups.add(Group.objects.get(name=AGENTS))
    case = WinbackCaseFactory(claimed_by=agent, lease_until=timezone.now() + timezone.timedelta(minutes=10))
    customer = case.customer
    order = OrderFactory(customer=customer)
    contact = ContactFactory(customer=customer)
    complaint = ComplaintFactory(customer=customer)
    feedback = FeedbackFactory(customer=customer)
    offer = OfferFactory()
    coupon = CouponFactory(customer=customer, offer=offer)
    touchpoint = TouchpointFactory(customer=customer)
    tuning = RuleTuning.objects.create(ran_at=timezone.now(), holdout_days=180, reason="test")
    unsubscribe = urlsplit(unsubscribe_url(customer_id=customer.pk, touchpoint_id=touchpoint.pk)).path
    score = urlsplit(score_links(touchpoint_id=touchpoint.pk, kind="nps")[-1]["url"]).path
    values = {
        "format": "json",
        "uidb64": urlsafe_base64_encode(force_bytes(agent.pk)),
        "customer-detail": {"external_id": customer.external_id},
        "customer-cancel": {"external_id": customer.external_id},
        "customer-lifecycle": {"external_id": customer.external_id},
        "order-detail": {"external_id": order.external_id},
        "contact-detail": {"external_id": contact.external_id},
        "complaint-detail": {"external_id": complaint.external_id},
        "feedback-detail": {"external_id": feedback.external_id},
        "acquisition-spend-detail": {"pk": AcquisitionSpendFactory().pk},
        "offer-detail": {"pk": offer.pk},
        "coupon-detail": {"code": coupon.code},
        "password_reset_confirm": {"token": default_token_generator.make_token(agent)},
        "admin:auth_user_password_change": {"id": agent.pk},
        "admin:touchpoints_cadencestep_preview": {"step_id": touchpoint.step_id},
        "admin:touchpoints_cadencestep_preview_html": {"step_id": touchpoint.step_id},
        "admin:touchpoints_cadencestep_test_send": {"step_id": touchpoint.step_id},
        "admin:metrics_kpis_csv": {"table": "agents"},
        "admin:winback_dormancypolicy_adopt": {"tuning_id": tuning.pk, "key": "nonsense"},
    }
    paths = {"touchpoints:unsubscribe": unsubscribe, "touchpoints:score": score}
    # Forms whose token travels in the body (an empty body would only test the token check).
    bodies = {"touchpoints:comment": {"answer": answer_token(feedback_id=feedback.pk), "comment": "Quick delivery"}}
    # A set-up but unconfirmed authenticator: its admin pages have a row, the manager's logins stay one-step.
    TOTPDevice.objects.create(user=manager, name="phone", confirmed=False)
    callers = {"anonymous": Client(), "agent": Client(), "other_agent": Client(), "manager": Client(),
               "integration": Client(HTTP_AUTHORIZATION=f"Token {_token_for(integration)}")}
    return {"case": case, "values": values, "paths": paths, "bodies": bodies, "callers": callers,
            "users": {"agent": agent, "other_agent": other, "manager": manager}}


def _admin_object_id(route: Route) -> int | str:
    """A row of the admin page's model, made by its factory if there is none: a missing object would only
    show the admin's "does not exist" redirect, which says nothing about who may see it."""
    from django.contrib import admin
    from tests.test_factories import PROJECT_APPS, _factory_for

    model = next(m for m in admin.site._registry if route.name.startswith(f"admin:{m._meta.app_label}_{m._meta.model_name}_"))
    row = model._default_manager.order_by("pk").first()
    if row is None and model._meta.app_label in PROJECT_APPS:
        row = _factory_for(model)()
    return row.pk if row is not None else 1  # a third-party model: its admin is the same for any id


def _url(route: Route, world) -> str:
    if route.name in world["paths"]:
        return world["paths"][route.name]
    if route.name == "admin:autocomplete":
        return reverse(route.name) + (_autocomplete_query() or "")
    named = world["values"].get(route.name, {})
    kwargs = {}
    for arg in route.kwargs:
        if arg in named:
            kwargs[arg] = named[arg]
        elif arg in ("object_id", "pk") and route.name.startswith("admin:") and route.name != "admin:view_on_site":
            kwargs[arg] = _admin_object_id(route)
        elif arg in ("pk", "object_id"):
            kwargs[arg] = world["case"].pk
        elif arg == "app_label":
            kwargs[arg] = "crm"
        elif arg == "content_type_id":
            kwargs[arg] = 1
        else:
            kwargs[arg] = world["values"][arg]
    return reverse(route.name, kwargs=kwargs)


def _allowed(response, *, url: str, public: bool) -> bool:
    if response.status_code in DENIED:
        return False
    if response.status_code in (301, 302, 303):
        # Where a page for anybody sends you on (logging out lands on the login page) is not a refusal.
        return public or not urlsplit(response["Location"]).path.startswith(LOGIN_PATHS)
    if response.status_code == 404:
        return False  # every object named in a URL here exists: a 404 is the object hidden from the caller
    assert response.status_code < 500, f"{url}: {response.status_code}"
    return True


def _check(route: Route, rule: Rule, world, callers=CALLERS) -> list[str]:
    wrong = []
    for caller in callers:
        client = world["callers"][caller]
        if caller in world["users"]:  # again each time: a logout route ends the session
            client.force_login(world["users"][caller])
        with transaction.atomic():
            url = _url(route, world)
            for method in route.methods:
                if method == "GET":
                    response = client.get(url)
                elif route.name in world["bodies"]:
                    response = client.post(url, data=world["bodies"][route.name])
                else:
                    response = getattr(client, method.lower())(url, data="{}", content_type="application/json")
                if response.status_code == 405:
                    continue
                allowed_callers = rule.read if method == "GET" else rule.write
                if _allowed(response, url=url, public=allowed_callers == EVERYONE) != (caller in allowed_callers):
                    wrong.append(f"{method} {url} as {caller}: {response.status_code}, expected "
                                 f"{'allowed' if caller in allowed_callers else 'refused'}")
            transaction.set_rollback(True)
    return wrong


@pytest.mark.parametrize("route", [r for r in ROUTES if not r.is_admin and r.name in POLICY], ids=lambda r: r.pattern)
def test_each_route_answers_each_caller_as_declared(world, route):
    # Given every kind of caller, when each calls the route with each method it takes,
    # then exactly the declared ones get through
    assert _check(route, POLICY[route.name], world) == []


@pytest.mark.parametrize("caller", CALLERS)
def test_every_admin_route_is_for_managers_only(world, caller):
    # Given every admin route, when the caller asks for it, then only a manager gets past the admin login
    wrong = []
    for route in (r for r in ROUTES if r.is_admin):
        wrong += _check(route, _admin_rule(route.name), world, callers=(caller,))
    assert wrong == []
