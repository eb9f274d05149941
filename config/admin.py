"""The beat schedule in the admin, for managers: django_celery_beat registers its admin; this replaces it.

Managers see the periodic tasks, each with its schedule as a sentence and a "Run now" button; the schedules
themselves (clocked, crontab, interval, solar) are beat's internals, shown to superusers only. They are hidden
here, in the admin, rather than by taking the permissions from the Managers group: a manager still picks one
of the existing schedules for a task (the form's select), and core/roles.py keeps granting every model of a
managed app alike. (beat's change tracker, PeriodicTasks, has no admin page.)
"""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST
from django_celery_beat.admin import (
    ClockedScheduleAdmin, CrontabScheduleAdmin, IntervalScheduleAdmin, PeriodicTaskAdmin, SolarScheduleAdmin,
)
from django_celery_beat.models import ClockedSchedule, CrontabSchedule, IntervalSchedule, PeriodicTask, SolarSchedule

from config.beat import periodic_task_run_now, periodic_task_sentence


class SuperuserOnlyAdminMixin:
    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.is_superuser

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.is_superuser

    def history_view(self, request: HttpRequest, object_id: str, extra_context=None) -> HttpResponse:
        # The admin looks the row up before asking: refused first, so a missing row says nothing either.
        if not request.user.is_superuser:
            raise PermissionDenied
        return super().history_view(request, object_id, extra_context)


for _model, _admin in ((ClockedSchedule, ClockedScheduleAdmin), (CrontabSchedule, CrontabScheduleAdmin),
                       (IntervalSchedule, IntervalScheduleAdmin), (SolarSchedule, SolarScheduleAdmin)):
    admin.site.unregister(_model)
    admin.site.register(_model, type(_admin.__name__, (SuperuserOnlyAdminMixin, _admin), {}))


admin.site.unregister(PeriodicTask)


@admin.register(PeriodicTask)
class BeatTaskAdmin(PeriodicTaskAdmin):
    list_display = ("name", "schedule_text", "enabled", "last_run_at", "total_run_count", "run_now")
    list_filter = ("enabled", "one_off", "task")
    # One way to run a task by hand, with its checks: the row's "Run now" (beat's own "Run selected tasks"
    # would run disabled and unknown tasks too).
    actions = ("enable_tasks", "disable_tasks", "toggle_tasks")
    # The package's form template runs an inline script, which the Content-Security-Policy refuses.
    change_form_template = "admin/change_form.html"
    readonly_fields = ("last_run_at", "schedule_text")
    fieldsets = [(name, {**options, "fields": tuple("schedule_text" if f == "crontab_translation" else f
                                                     for f in options["fields"])})
                 for name, options in PeriodicTaskAdmin.fieldsets]

    @admin.display(description=gettext_lazy("Schedule"))
    def schedule_text(self, obj: PeriodicTask) -> str:
        return periodic_task_sentence(obj)

    @admin.display(description=gettext_lazy("Run"))
    def run_now(self, obj: PeriodicTask) -> str:
        if not obj.enabled:
            return ""
        # The changelist is one form (the actions'): the button posts it, with its CSRF token, to its own URL.
        return format_html('<button type="submit" class="button" formaction="{}" name="_run_now">{}</button>',
                           reverse("admin:django_celery_beat_periodictask_run", args=[obj.pk]), _("Run now"))

    def get_urls(self):
        run = self.admin_site.admin_view(require_POST(self.run_now_view))
        return [path("<int:object_id>/run/", run, name="django_celery_beat_periodictask_run"), *super().get_urls()]

    def run_now_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        task = get_object_or_404(PeriodicTask, pk=object_id)
        if not self.has_change_permission(request, task):
            raise PermissionDenied
        try:
            with transaction.atomic():  # the message goes to the broker once the history row is written
                periodic_task_run_now(periodic_task=task)
                self.log_change(request, task, _("Run now: queued."))
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, _("“%(name)s” was queued: a worker runs it in a moment.") % {"name": task.name})
        return HttpResponseRedirect(reverse("admin:django_celery_beat_periodictask_changelist"))
