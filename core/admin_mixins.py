from django.http import HttpRequest


class ReadOnlyAdminMixin:
    """Records the admin shows but never edits: facts from other systems, derived rows, logs."""

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class SingletonAdminMixin:
    """A settings row: one may be added if there is none, and it is never deleted."""

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return not self.model.objects.exists() and super().has_add_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
