from django.http import HttpRequest


class ReadOnlyAdminMixin:
    """Records the admin shows but never edits: facts from other systems, derived rows, logs."""

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
