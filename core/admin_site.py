from collections.abc import Callable

from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _

from core.forms import AdminLoginForm
from core.roles import user_is_manager
from core.selectors import user_second_step_missing

# The names of other projects' apps and models in the admin's lists, in the person's language: those apps give
# their names in English only (Knox, Axes, "Otp_Totp") or have no Arabic or Hungarian catalogue. Their own
# pages keep their wording; the app list, the sidebar and the home read as one product.
THIRD_PARTY_NAMES: dict[str, tuple[str, dict[str, str]]] = {
    "knox": (_("API access"), {"AuthToken": _("API tokens")}),
    "axes": (_("Login lockout"), {"AccessAttempt": _("Failed login attempts"), "AccessLog": _("Logins"),
                                  "AccessFailureLog": _("Failed logins")}),
    "otp_totp": (_("Two-step login"), {"TOTPDevice": _("Authenticator apps")}),
    "django_celery_beat": (_("Schedules"), {
        "PeriodicTask": _("Periodic tasks"), "IntervalSchedule": _("Intervals"), "CrontabSchedule": _("Crontabs"),
        "SolarSchedule": _("Solar events"), "ClockedSchedule": _("One-off times")}),
}

# A section of the managers' home: given the request, the template to include and its context (the
# template's "section"), or None to show nothing.
HomeSection = Callable[[HttpRequest], dict | None]


class WinbackAdminSite(admin.AdminSite):
    """The managers' admin. Its index is the managers' home ("/" and "View site" lead here, core.views.home):
    the sections the apps register (the KPI figures), then the app list."""

    site_header = _("Win-back service")
    site_title = _("Win-back admin")
    index_title = _("Home: customers, win-back and KPIs")
    login_form = AdminLoginForm
    login_template = "admin/login_second_step.html"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._home_sections: list[HomeSection] = []

    def register_home_section(self, section: HomeSection) -> None:
        """An app above core adds a section to the home (from its admin module: core imports no app)."""
        if section not in self._home_sections:
            self._home_sections.append(section)

    def has_permission(self, request: HttpRequest) -> bool:
        # Agents work the queue page, never the admin, even if someone ticks "staff" on them by mistake.
        # A manager with an authenticator needs a session that gave its code (one older than the set-up
        # goes back to the login page).
        return (request.user.is_active and request.user.is_staff and user_is_manager(request.user)
                and not user_second_step_missing(user=request.user))

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict]:
        apps = super().get_app_list(request, app_label)
        for app in apps:
            if app["app_label"] in THIRD_PARTY_NAMES:
                app_name, model_names = THIRD_PARTY_NAMES[app["app_label"]]
                app["name"] = app_name
                for model in app["models"]:
                    model["name"] = model_names.get(model["object_name"], model["name"])
        return apps

    def index(self, request: HttpRequest, extra_context: dict | None = None) -> TemplateResponse:
        sections = [s for s in (section(request) for section in self._home_sections) if s]
        return super().index(request, {"home_sections": sections, **(extra_context or {})})
