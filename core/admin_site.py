from django.contrib import admin
from django.http import HttpRequest

from core.roles import user_is_manager


class WinbackAdminSite(admin.AdminSite):
    site_header = "Win-back service"
    site_title = "Win-back admin"
    index_title = "Customers, win-back and KPIs"

    def has_permission(self, request: HttpRequest) -> bool:
        # Agents work the queue page, never the admin, even if someone ticks "staff" on them by mistake.
        return request.user.is_active and request.user.is_staff and user_is_manager(request.user)
