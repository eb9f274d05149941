"""The three roles: agents work the queue, managers run the admin and KPIs, integrations push data.

The groups are created by a migration; their permissions are (re)granted after every migrate, because
model permissions only exist once all apps have migrated.
"""

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group, Permission

AGENTS = "Agents"
MANAGERS = "Managers"
INTEGRATIONS = "Integrations"

# Apps whose every model a manager may view, add and change (deleting business records is not a
# manager's everyday action: history feeds the KPIs).
MANAGED_APPS = ("crm", "predictions", "winback", "touchpoints", "metrics", "django_celery_beat")
INTEGRATION_MODELS = ("customer", "order", "contact", "complaint", "feedback", "acquisitionspend")
# Permissions of the integration models that stay a person's (a manager's) decision.
MANAGER_ONLY_CODENAMES = ("clear_do_not_call", "export_customer", "erase_customer")
# Inputs that are not history, so they may be deleted (through the service, which audits it): a spend entered by
# mistake must go, since an amount of 0 would still make the month's CAC a figure instead of n/a.
DELETABLE_INPUT_CODENAMES = ("delete_acquisitionspend",)
# Managers unlock locked-out logins (deleting axes' attempt rows) and revoke API tokens (deleting knox's rows).
MANAGER_SECURITY_PERMISSIONS = {
    "axes": ("view_accessattempt", "delete_accessattempt", "view_accesslog", "view_accessfailurelog"),
    "knox": ("view_authtoken", "delete_authtoken"),
    # The business figures (margin, discount rate, currency) are core's; the rest of core is the system's.
    "core": ("view_businesssettings", "change_businesssettings"),
}


def _in_group(user: AbstractBaseUser, name: str) -> bool:
    # The API's token authentication reads the group names with the user (role_names); otherwise ask.
    names = getattr(user, "role_names", None)
    if names is not None:
        return name in names
    return user.groups.filter(name=name).exists()


def user_is_manager(user: AbstractBaseUser | AnonymousUser) -> bool:
    if not user.is_authenticated:
        return False
    return user.is_superuser or _in_group(user, MANAGERS)


def user_is_agent(user: AbstractBaseUser | AnonymousUser) -> bool:
    return user.is_authenticated and _in_group(user, AGENTS)


def roles_sync_permissions(**kwargs: Any) -> None:
    managers, _ = Group.objects.get_or_create(name=MANAGERS)
    Group.objects.get_or_create(name=AGENTS)
    integrations, _ = Group.objects.get_or_create(name=INTEGRATIONS)
    managers.permissions.add(
        *Permission.objects.filter(content_type__app_label__in=MANAGED_APPS).exclude(
            codename__startswith="delete_"
        )
    )
    for app_label, codenames in MANAGER_SECURITY_PERMISSIONS.items():
        managers.permissions.add(
            *Permission.objects.filter(content_type__app_label=app_label, codename__in=codenames))
    integrations.permissions.add(
        *Permission.objects.filter(
            content_type__app_label="crm", content_type__model__in=INTEGRATION_MODELS
        ).exclude(codename__startswith="delete_").exclude(codename__in=MANAGER_ONLY_CODENAMES)
    )
    integrations.permissions.remove(*Permission.objects.filter(codename__in=MANAGER_ONLY_CODENAMES))
    deletable = Permission.objects.filter(content_type__app_label="crm", codename__in=DELETABLE_INPUT_CODENAMES)
    managers.permissions.add(*deletable)
    integrations.permissions.add(*deletable)
