from axes.admin import AccessAttemptAdmin
from babel.lists import format_list
from axes.models import AccessAttempt
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext, ngettext
from knox.models import AuthToken

from core.admin_mixins import ReadOnlyAdminMixin, SingletonAdminMixin
from core.models import BatchRun, BatchRunPart, BusinessSettings, EnqueueFailure, Heartbeat
from core.services import api_token_revoke, login_lockout_clear


@admin.register(BusinessSettings)
class BusinessSettingsAdmin(SingletonAdminMixin, admin.ModelAdmin):
    list_display = ("__str__", "gross_margin", "monthly_discount_rate", "currency", "digits", "updated_at")


@admin.register(Heartbeat)
class HeartbeatAdmin(admin.ModelAdmin):
    list_display = ("name", "beat_at", "worker")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(EnqueueFailure)
class EnqueueFailureAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("task", "count", "last_at", "last_error")


class BatchRunPartInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = BatchRunPart
    fields = ("index", "params", "done_at", "attempts", "result", "error")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(BatchRun)
class BatchRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Where a long job is: batches done of all, and the error of the batch that failed."""

    list_display = ("name", "status", "progress", "inline", "created_by", "created_at", "finished_at")
    list_filter = ("kind", "status", "inline")
    fields = ("kind", "label", "status", "progress", "inline", "created_by", "created_at", "updated_at",
              "finished_at", "params", "result", "error")
    readonly_fields = fields
    inlines = [BatchRunPartInline]

    @admin.display(description=_("run"), ordering="label")
    def name(self, obj: BatchRun) -> str:
        # Labels are stored in English (marked with gettext_noop where they are made) and shown in the reader's.
        return gettext(obj.label or obj.kind)

    @admin.display(description=_("progress"))
    def progress(self, obj: BatchRun) -> str:
        return ngettext("%(done)s of %(total)s batch", "%(done)s of %(total)s batches", obj.parts_total) % {
            "done": obj.parts_done, "total": obj.parts_total}


admin.site.unregister(AccessAttempt)


@admin.register(AccessAttempt)
class LockoutAdmin(AccessAttemptAdmin):
    """axes' failed-login rows, with the manager's "Unlock" (deleting a row unlocks its account and address
    alike; "Unlock" clears the selected accounts' failures from every address)."""

    actions = ["unlock", "cleanup_expired_attempts"]

    @admin.action(description=_("Unlock the selected accounts (their failures from every address)"),
                  permissions=["delete"])
    def unlock(self, request: HttpRequest, queryset: QuerySet[AccessAttempt]) -> None:
        usernames = sorted({u for u in queryset.values_list("username", flat=True) if u})
        login_lockout_clear(usernames=usernames)
        self.message_user(request, ngettext("Unlocked %(names)s.", "Unlocked %(names)s.", len(usernames))
                          % {"names": format_list(usernames, locale=translation.to_locale(translation.get_language() or "en"))},
                          messages.SUCCESS)


admin.site.unregister(AuthToken)


@admin.register(AuthToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """API tokens: only their digest is stored, so nothing here can be used to call the API. Deleting one
    revokes it at once. New tokens come from ``manage.py drf_create_token USER`` (shown once there)."""

    list_display = ("user", "token_key", "created", "expiry")
    list_filter = ("expiry",)
    search_fields = ("user__username", "token_key")
    fields = ("user", "token_key", "created", "expiry")
    readonly_fields = fields
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuthToken | None = None) -> bool:
        return False

    @admin.action(description=_("Revoke the selected tokens"), permissions=["delete"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[AuthToken]) -> None:
        tokens = list(queryset)
        for token in tokens:
            api_token_revoke(token=token)
        self.message_user(request, ngettext("Revoked %(count)d token.", "Revoked %(count)d tokens.", len(tokens))
                          % {"count": len(tokens)}, messages.SUCCESS)
