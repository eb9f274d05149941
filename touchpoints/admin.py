from csp.constants import NONE, SELF, UNSAFE_INLINE
from csp.decorators import csp
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.views.decorators.clickjacking import xframe_options_sameorigin

from core.admin_mixins import ReadOnlyAdminMixin, SingletonAdminMixin
from crm.models import Customer
from crm.services.audit import Actor
from touchpoints.models import Cadence, CadenceStep, Touchpoint, TouchpointSettings
from touchpoints.selectors import settings_problems
from touchpoints.services.rendering import Rendered, touchpoint_context, touchpoint_render
from touchpoints.services.sending import RETRY_REASONS, touchpoint_retry
from winback.admin import SettingsProblemsAdminMixin
from winback.models import Coupon
from winback.services.queue import coupon_expires_at

PREVIEW_LOCALES = ("en", "ar")
# The policy of the email preview's HTML part: the inline styles every email carries, and nothing else (no
# script, no request out); only the preview page may frame it, and "sandbox" gives it an origin of its own.
EMAIL_PREVIEW_POLICY = {
    "default-src": [NONE], "style-src": [UNSAFE_INLINE], "img-src": ["data:"], "base-uri": [NONE],
    "form-action": [NONE], "frame-ancestors": [SELF], "sandbox": True,
}


class CadenceStepInline(admin.TabularInline):
    model = CadenceStep
    extra = 0
    fields = ("position", "offset_days", "offset_hours", "channel", "template", "offer", "enabled", "preview")
    readonly_fields = ("preview",)

    @admin.display(description="preview")
    def preview(self, step: CadenceStep) -> str:
        if not step.pk or not step.template:
            return "-"
        url = reverse("admin:touchpoints_cadencestep_preview", args=[step.pk])
        return format_html_join(" ", '<a href="{}?locale={}">{}</a>', ((url, loc, loc) for loc in PREVIEW_LOCALES))


@admin.register(Cadence)
class CadenceAdmin(SettingsProblemsAdminMixin, admin.ModelAdmin):
    settings_problems = staticmethod(settings_problems)
    list_display = ("name", "trigger", "enabled", "marketing", "step_count", "updated_at")
    list_filter = ("trigger", "enabled", "marketing")
    search_fields = ("name",)
    inlines = [CadenceStepInline]
    fieldsets = (
        (None, {"fields": ("name", "trigger", "enabled", "marketing")}),
        ("Audience", {"fields": ("min_orders", "min_total_spent", "locales")}),
        ("Trigger settings", {"fields": ("milestones", "interval_days")}),
    )

    @admin.display(description="steps")
    def step_count(self, cadence: Cadence) -> int:
        return cadence.steps.count()

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # touchpoints point at the steps; disable a cadence instead

    def get_urls(self):
        # The HTML part is a document of its own, framed by the preview page: an email's inline styles need a
        # policy the admin page must not have (see preview_html_view).
        html_view = csp(EMAIL_PREVIEW_POLICY)(xframe_options_sameorigin(self.preview_html_view))
        return [path("step/<int:step_id>/preview/", self.admin_site.admin_view(self.preview_view),
                     name="touchpoints_cadencestep_preview"),
                path("step/<int:step_id>/preview/html/", self.admin_site.admin_view(html_view),
                     name="touchpoints_cadencestep_preview_html"), *super().get_urls()]

    def preview_view(self, request: HttpRequest, step_id: int) -> HttpResponse:
        """The step's message as a sample customer would get it, in the chosen language."""
        if not self.has_view_permission(request):
            return HttpResponse(status=403)
        step, locale, rendered, warning = self._preview(request, step_id)
        if warning:
            messages.warning(request, warning)
        return TemplateResponse(request, "admin/touchpoints/preview.html", {
            **self.admin_site.each_context(request), "title": f"Preview: {step}", "step": step,
            "rendered": rendered, "locales": PREVIEW_LOCALES, "locale": locale, "opts": self.model._meta,
        })

    def preview_html_view(self, request: HttpRequest, step_id: int) -> HttpResponse:
        """The HTML part alone, for the preview page's sandboxed frame."""
        if not self.has_view_permission(request):
            return HttpResponse(status=403)
        return HttpResponse(self._preview(request, step_id)[2].html)

    def _preview(self, request: HttpRequest, step_id: int) -> tuple[CadenceStep, str, Rendered, str]:
        """The step, the locale asked for, the rendered message and a warning for the manager (or "")."""
        step = get_object_or_404(CadenceStep.objects.select_related("cadence", "offer"), pk=step_id)
        locale = request.GET.get("locale", "en")
        customer = Customer(pk=0, name="Sample Customer" if locale != "ar" else "سارة أحمد",
                            email="sample@example.com", locale=locale)
        coupon, warning = None, ""
        if step.offer:
            coupon = Coupon(code=f"{step.offer.code_prefix}-SAMPLE42", offer=step.offer)
            try:
                coupon.expires_at = coupon_expires_at(offer=step.offer, now=timezone.now())
            except ValidationError as exc:  # an old offer out of bounds: the message shows without a date
                warning = " ".join(exc.messages)
        context = touchpoint_context(customer=customer, touchpoint_id=0, template=step.template,
                                     marketing=step.cadence.marketing, coupon=coupon,
                                     extra={"milestone": 10, "years": 3})
        return step, locale, touchpoint_render(template=step.template, locale=locale, context=context), warning


class TouchpointStatusFilter(admin.SimpleListFilter):
    title = "reason"
    parameter_name = "reason"

    def lookups(self, request, model_admin):
        return Touchpoint.Reason.choices

    def queryset(self, request, queryset):
        return queryset.filter(reason=self.value()) if self.value() else queryset


class TouchpointRetryFilter(admin.SimpleListFilter):
    title = _("temporary errors")
    parameter_name = "retrying"

    def lookups(self, request, model_admin):
        return [("mail_server", _("Waiting for the mail server")), ("any", _("Retrying after any temporary error"))]

    def queryset(self, request, queryset):
        if self.value() == "mail_server":
            return queryset.filter(status=Touchpoint.Status.SCHEDULED, reason=Touchpoint.Reason.MAIL_SERVER)
        if self.value() == "any":
            return queryset.filter(status=Touchpoint.Status.SCHEDULED, reason__in=RETRY_REASONS)
        return queryset


@admin.register(Touchpoint)
class TouchpointAdmin(SettingsProblemsAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    settings_problems = staticmethod(settings_problems)
    list_display = ("id", "customer", "step", "channel", "due_at", "state", "reason", "attempts", "sent_at", "short_error")
    list_filter = ("status", TouchpointRetryFilter, TouchpointStatusFilter, "channel", "step__cadence")
    search_fields = ("customer__external_id", "customer__email", "idempotency_key", "provider_message_id")
    date_hierarchy = "due_at"
    list_select_related = ("customer", "step__cadence")
    show_full_result_count = False
    actions = ["retry"]

    @admin.display(description=_("status"), ordering="status")
    def state(self, tp: Touchpoint) -> str:
        """The status, and for one that waits after a temporary error: for what, and until when."""
        if tp.status != Touchpoint.Status.SCHEDULED or tp.reason not in RETRY_REASONS:
            return tp.get_status_display()
        label = (_("Waiting for the mail server") if tp.reason == Touchpoint.Reason.MAIL_SERVER
                 else _("Retrying after a temporary error"))
        if tp.retry_at is None or tp.retry_at <= timezone.now():
            return format_html("{}<br>{}", label, _("next attempt: now"))
        return format_html("{}<br>{} {}", label, _("next attempt:"), date_format(timezone.localtime(tp.retry_at), "SHORT_DATETIME_FORMAT"))

    @admin.display(description="last error")
    def short_error(self, tp: Touchpoint) -> str:
        return tp.last_error[:80]

    @admin.action(description="Retry the selected failed touchpoints now")
    def retry(self, request: HttpRequest, queryset) -> None:
        count = touchpoint_retry(touchpoint_ids=list(queryset.values_list("pk", flat=True)),
                                 actor=Actor.of(request.user, via="admin"))
        skipped = queryset.count() - count
        self.message_user(request, f"{count} touchpoint(s) back in the outbox, due now."
                          + (f" {skipped} skipped: only failed ones can be retried." if skipped else ""),
                          messages.SUCCESS if count else messages.WARNING)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        # Read-only, but the retry action needs the change permission.
        return obj is None and request.user.has_perm("touchpoints.change_touchpoint")

    def get_actions(self, request: HttpRequest):
        actions = super().get_actions(request)
        if not request.user.has_perm("touchpoints.change_touchpoint"):
            actions.pop("retry", None)
        return actions


@admin.register(TouchpointSettings)
class TouchpointSettingsAdmin(SettingsProblemsAdminMixin, SingletonAdminMixin, admin.ModelAdmin):
    settings_problems = staticmethod(settings_problems)
    list_display = ("__str__", "cap_count", "cap_days", "transactional_exempt", "quiet_start", "quiet_end", "retry_base_seconds", "updated_at")
