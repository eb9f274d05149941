from django.contrib import admin

from core.admin_mixins import ReadOnlyAdminMixin
from core.models import EnqueueFailure, Heartbeat


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
