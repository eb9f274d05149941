import datetime as dt

from csp.constants import NONE, SELF, UNSAFE_INLINE
from csp.decorators import csp
from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import conditional_escape, format_html, format_html_join
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_POST

from core.admin_mixins import ReadOnlyAdminMixin, SingletonAdminMixin
from core.bounds import EARLIEST_BUSINESS_YEAR, latest_business_year
from crm.models import Customer
from crm.services.audit import Actor
from touchpoints.models import Cadence, CadenceStep, CadenceStepText, Touchpoint, TouchpointSettings
from touchpoints.selectors import (
    MAX_CUSTOMER_QUERY, cadence_results, customer_choices, result_definitions, settings_problems,
)
from touchpoints.services.cadence_fields import (
    TRIGGER_FIELDS, TRIGGER_SPECIFIC_FIELDS, cadence_fields_not_applicable, cadence_trigger_fields,
)
from touchpoints.services.preview import cadence_step_preview
from touchpoints.services.sending import RETRY_REASONS, touchpoint_retry
from touchpoints.services.trial_send import TEST_SUBJECT_PREFIX, SendRefused, cadence_step_test_send
from winback.admin import (
    ContentTranslationsAdminMixin, SettingsProblemsAdminMixin, TranslationInlineMixin, content_missing_html,
)

PREVIEW_LOCALES = tuple(code for code, _name in settings.LANGUAGES)  # every language has its emails
# The policy of the email preview's HTML part: the inline styles every email carries, and nothing else (no
# script, no request out); only the preview page may frame it, and "sandbox" gives it an origin of its own.
EMAIL_PREVIEW_POLICY = {
    "default-src": [NONE], "style-src": [UNSAFE_INLINE], "img-src": ["data:"], "base-uri": [NONE],
    "form-action": [NONE], "frame-ancestors": [SELF], "sandbox": True,
}


def step_preview_links(step: CadenceStep) -> str:
    if not step.pk or not step.template:
        return "-"
    url = reverse("admin:touchpoints_cadencestep_preview", args=[step.pk])
    links = format_html_join(" ", '<a href="{}?locale={}">{}</a>', ((url, loc, loc) for loc in PREVIEW_LOCALES))
    return format_html('{} &middot; <a href="{}#customer-chooser">{}</a>', links, url, _("as a customer…"))


class CadenceStepInline(admin.StackedInline):
    # Stacked, not tabular: eight columns of a table do not fit a phone's width; each step is a small card.
    model = CadenceStep
    extra = 0
    fields = (("position", "enabled"), ("offset_days", "offset_hours"), ("channel", "template"), "offer", "preview",
              "texts")
    readonly_fields = ("preview", "texts")
    classes = ("cadence-steps",)

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).prefetch_related("texts")

    @admin.display(description=_("texts per language"))
    def texts(self, step: CadenceStep) -> str:
        # A step's own texts are edited on a page of their own: the admin cannot nest an inline in an inline.
        if not step.pk or not step.template:
            return "-"
        url = reverse("admin:touchpoints_cadencestep_change", args=[step.pk])
        return format_html('{} <a href="{}">{}</a>', content_missing_html(step), url,
                           _("write the message per language"))

    @admin.display(description=_("preview"))
    def preview(self, step: CadenceStep) -> str:
        return step_preview_links(step)


class CadenceAdminForm(forms.ModelForm):
    class Meta:
        model = Cadence
        fields = "__all__"

    def clean(self):
        """A setting the chosen trigger does not read (hidden on the page) keeps its stored value: what was
        typed in it while it showed for another trigger is neither saved nor an error the manager cannot see."""
        cleaned = super().clean()
        trigger = cleaned.get("trigger") or self.instance.trigger
        for name in cadence_fields_not_applicable(trigger=trigger):
            if name in self.fields:
                self._errors.pop(name, None)
                cleaned[name] = self.fields[name].initial if self.instance.pk is None else getattr(self.instance, name)
        return cleaned


class ResultsPeriodForm(forms.Form):
    """The period of the cadence page's results: two dates of the business time zone, both included."""

    results_from = forms.DateField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    results_to = forms.DateField(label=_("To (included)"), required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        cleaned = super().clean()
        for name in ("results_from", "results_to"):
            day = cleaned.get(name)
            if day is not None and not EARLIEST_BUSINESS_YEAR <= day.year <= latest_business_year():
                self.add_error(name, _("Choose a date from %(first)s to %(last)s.") % {
                    "first": EARLIEST_BUSINESS_YEAR, "last": latest_business_year()})
        start, end = cleaned.get("results_from"), cleaned.get("results_to")
        if start and end and start > end:
            self.add_error("results_to", _("The end of the period is before its start."))
        return cleaned

    def bounds(self) -> tuple[dt.datetime | None, dt.datetime | None]:
        """[start, end): midnight of the first day to midnight after the last, in the business time zone."""
        if not self.is_valid():
            return None, None
        zone = timezone.get_default_timezone()
        start, end = self.cleaned_data.get("results_from"), self.cleaned_data.get("results_to")
        return (dt.datetime.combine(start, dt.time(), tzinfo=zone) if start else None,
                dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tzinfo=zone) if end else None)


@admin.register(Cadence)
class CadenceAdmin(SettingsProblemsAdminMixin, admin.ModelAdmin):
    settings_problems = staticmethod(settings_problems)
    form = CadenceAdminForm
    list_display = ("name", "trigger", "enabled", "marketing", "step_count", "updated_at")
    list_filter = ("trigger", "enabled", "marketing")
    search_fields = ("name",)
    inlines = [CadenceStepInline]
    fieldsets = (
        (None, {"fields": ("name", "trigger", "enabled", "marketing")}),
        (_("Audience"), {"fields": ("min_orders", "min_total_spent", "locales")}),
        (_("Trigger settings"), {"fields": TRIGGER_SPECIFIC_FIELDS, "classes": ("cadence-trigger-settings",)}),
    )

    class Media:
        css = {"all": ("touchpoints/cadence.css", "winback/content_languages.css")}
        js = ("touchpoints/cadence.js",)

    @admin.display(description=_("steps"))
    def step_count(self, cadence: Cadence) -> int:
        return cadence.steps.count()

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # touchpoints point at the steps; disable a cadence instead

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        # A saved cadence keeps its trigger: its touchpoints and results were made by it (another trigger is
        # another cadence), and the page shows the settings of that trigger only.
        return ("trigger",) if obj is not None else ()

    def get_fieldsets(self, request: HttpRequest, obj=None):
        if obj is None:
            return self.fieldsets  # every setting; cadence.js hides those the chosen trigger does not read
        own = cadence_trigger_fields(trigger=obj.trigger)
        return tuple((name, {**opts, "fields": tuple(f for f in opts["fields"] if f not in TRIGGER_SPECIFIC_FIELDS or f in own)})
                     for name, opts in self.fieldsets
                     if any(f not in TRIGGER_SPECIFIC_FIELDS or f in own for f in opts["fields"]))

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["trigger_fields"] = {"by_trigger": {k: list(v) for k, v in TRIGGER_FIELDS.items()},
                                     "specific": list(TRIGGER_SPECIFIC_FIELDS)}
        if obj is not None and obj.pk:
            period = ResultsPeriodForm(request.GET or None)
            start, end = period.bounds()
            results = cadence_results(cadence=obj, start=start, end=end)
            context.update(results=results, results_period=period,
                           result_definitions=result_definitions(window_days=results.window_days))
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    def get_urls(self):
        # The HTML part is a document of its own, framed by the preview page: an email's inline styles need a
        # policy the admin page must not have (see preview_html_view).
        html_view = csp(EMAIL_PREVIEW_POLICY)(xframe_options_sameorigin(self.preview_html_view))
        return [path("step/<int:step_id>/preview/", self.admin_site.admin_view(self.preview_view),
                     name="touchpoints_cadencestep_preview"),
                path("step/<int:step_id>/preview/html/", self.admin_site.admin_view(html_view),
                     name="touchpoints_cadencestep_preview_html"),
                path("step/<int:step_id>/test-send/", self.admin_site.admin_view(require_POST(self.test_send_view)),
                     name="touchpoints_cadencestep_test_send"), *super().get_urls()]

    def preview_view(self, request: HttpRequest, step_id: int) -> HttpResponse:
        """The step's message as a chosen customer (or a sample customer, in the chosen language) would get it."""
        if not self.has_view_permission(request):
            return HttpResponse(status=403)
        step = self._step(step_id)
        query = request.GET.get("customer", "").strip()
        customer, choices = self._chosen_customer(request, query)
        locale = request.GET.get("locale", "en")
        preview = cadence_step_preview(step=step, customer=customer, locale=locale) if step.template else None
        if preview and preview.warning:
            messages.warning(request, preview.warning)
        return TemplateResponse(request, "admin/touchpoints/preview.html", {
            **self.admin_site.each_context(request), "title": _("Preview: %(step)s") % {"step": step}, "step": step,
            "preview": preview, "rendered": preview.rendered if preview else None, "locales": PREVIEW_LOCALES,
            "locale": locale, "opts": self.model._meta, "chosen_customer": customer, "choices": choices, "query": query,
            "max_query": MAX_CUSTOMER_QUERY, "can_test_send": self.has_change_permission(request),
        })

    def preview_html_view(self, request: HttpRequest, step_id: int) -> HttpResponse:
        """The HTML part alone, for the preview page's sandboxed frame."""
        if not self.has_view_permission(request):
            return HttpResponse(status=403)
        step = self._step(step_id)
        if not step.template:
            return HttpResponse(status=404)
        choices = customer_choices(query=request.GET.get("customer", ""))
        customer = choices[0] if len(choices) == 1 else None
        return HttpResponse(cadence_step_preview(step=step, customer=customer, locale=request.GET.get("locale", "en")).rendered.html)

    def test_send_view(self, request: HttpRequest, step_id: int) -> HttpResponse:
        """Send the step to the manager's own address, as a chosen customer (or a sample) would get it."""
        if not self.has_change_permission(request):
            return HttpResponse(status=403)
        step = self._step(step_id)
        query = request.POST.get("customer", "").strip()
        customer, _choices = self._chosen_customer(request, query)
        target = request.POST.get("next", "")
        if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
            target = reverse("admin:touchpoints_cadencestep_preview", args=[step.pk])
        if query and customer is None:
            return HttpResponseRedirect(target)  # _chosen_customer said why; nothing was sent
        try:
            cadence_step_test_send(step=step, customer=customer, to=request.user.email,
                                   requested_by=request.user.get_username(), locale=request.POST.get("locale", "en"))
        except SendRefused as exc:
            messages.error(request, str(exc))
        else:
            who = _("a sample customer") if customer is None else f"{customer.name} (#{customer.pk})"
            messages.success(request, _("Test of step %(position)s sent to %(address)s, as %(who)s would get it. "
                                        "Its subject starts with %(prefix)s; it is not a touchpoint and counts nowhere.")
                             % {"position": step.position, "address": request.user.email, "who": who,
                                "prefix": TEST_SUBJECT_PREFIX})
        return HttpResponseRedirect(target)

    def _step(self, step_id: int) -> CadenceStep:
        return get_object_or_404(CadenceStep.objects.select_related("cadence", "offer"), pk=step_id)

    def _chosen_customer(self, request: HttpRequest, query: str) -> tuple[Customer | None, list[Customer]]:
        """The one customer ``query`` names, else None with a message saying why (several: the choices)."""
        if not query:
            return None, []
        if len(query) > MAX_CUSTOMER_QUERY:
            messages.error(request, _("Type at most %(most)s characters: a customer id, external id or email address.")
                           % {"most": MAX_CUSTOMER_QUERY})
            return None, []
        choices = customer_choices(query=query)
        if not choices:
            messages.error(request, _("No customer has the id, external id or email address “%(query)s”; "
                                      "showing the sample customer.") % {"query": query})
        elif len(choices) > 1:
            messages.warning(request, _("Several customers match “%(query)s”: choose one below.") % {"query": query})
        return (choices[0] if len(choices) == 1 else None), (choices if len(choices) > 1 else [])


class CadenceStepTextInline(TranslationInlineMixin, admin.StackedInline):
    model = CadenceStepText
    extra = 0
    max_num = len(settings.LANGUAGES)
    fields = ("language", "subject", "body", "sms")


@admin.register(CadenceStep)
class CadenceStepAdmin(ContentTranslationsAdminMixin, admin.ModelAdmin):
    """A step's messages per language, written by a manager (each replaces the step's file template in its
    language). The step itself is edited on its cadence's page; here it is read only."""

    translations_related = "texts"
    inlines = [CadenceStepTextInline]
    fields = ("cadence", "position", "channel", "template", "offer", "language_status", "preview")
    readonly_fields = fields
    list_display = ("__str__", "channel", "template", "missing_languages")
    list_select_related = ("cadence",)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return False  # reached from its cadence's page, not the admin index

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # steps are added on their cadence's page

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # touchpoints point at the steps; disable a step instead

    @admin.display(description=_("preview"))
    def preview(self, step: CadenceStep) -> str:
        return step_preview_links(step)


class TouchpointStatusFilter(admin.SimpleListFilter):
    title = _("reason")
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
        when = format_html("<bdi>{}</bdi>", date_format(timezone.localtime(tp.retry_at), "SHORT_DATETIME_FORMAT"))
        return format_html("{}<br>{}", label, mark_safe(conditional_escape(gettext("next attempt: %(time)s")) % {"time": when}))

    @admin.display(description=_("last error"))
    def short_error(self, tp: Touchpoint) -> str:
        return tp.last_error[:80]

    @admin.action(description=_("Retry the selected failed touchpoints now"))
    def retry(self, request: HttpRequest, queryset) -> None:
        count = touchpoint_retry(touchpoint_ids=list(queryset.values_list("pk", flat=True)),
                                 actor=Actor.of(request.user, via="admin"))
        skipped = queryset.count() - count
        level = messages.SUCCESS if count else messages.WARNING
        self.message_user(request, ngettext("%(count)s touchpoint back in the outbox, due now.",
                                            "%(count)s touchpoints back in the outbox, due now.", count) % {"count": count}, level)
        if skipped:
            self.message_user(request, ngettext("%(count)s skipped: only failed touchpoints can be retried.",
                                                "%(count)s skipped: only failed touchpoints can be retried.", skipped)
                              % {"count": skipped}, level)

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
