from django.contrib import admin
from django.http import HttpRequest

from core.forms import AdminLoginForm
from core.roles import user_is_manager
from core.selectors import user_second_step_missing


class WinbackAdminSite(admin.AdminSite):
    site_header = "Win-back service"
    site_title = "Win-back admin"
    index_title = "Customers, win-back and KPIs"
    login_form = AdminLoginForm
    login_template = "admin/login_second_step.html"

    def has_permission(self, request: HttpRequest) -> bool:
        # Agents work the queue page, never the admin, even if someone ticks "staff" on them by mistake.
        # A manager with an authenticator needs a session that gave its code (one older than the set-up
        # goes back to the login page).
        return (request.user.is_active and request.user.is_staff and user_is_manager(request.user)
                and not user_second_step_missing(user=request.user))
