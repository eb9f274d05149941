from django.contrib.admin.apps import AdminConfig


class WinbackAdminConfig(AdminConfig):
    default_site = "core.admin_site.WinbackAdminSite"
