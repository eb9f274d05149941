import datetime as dt
from collections.abc import Callable

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import flatten_fieldsets
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import get_language_info, gettext_lazy, ngettext
from django.views.decorators.http import require_POST

from core.admin_mixins import ReadOnlyAdminMixin, SingletonAdminMixin
from core.content import content_missing_languages
from core.drilldown import KpiDrilldownFilter
from crm.admin import CustomerIdFilter
from crm.models import Customer
from winback.models import (
    CallSettings, CaseEvent, Coupon, Disposition, DormancyPolicy, LeaveReason, LeaveReasonTranslation, LifecycleEvent,
    LifecycleScanState, Offer, OfferTranslation, RuleTuning, WinbackCase,
)
from winback.selectors import settings_problems, tuning_latest
from winback.services.policy import POLICY_FIELDS, policy_change
from winback.services.policy_preview import (
    PolicyPreview, PolicyPreviewTooSlow, policy_preview, policy_rebuild_customers,
)


class SettingsProblemsAdminMixin:
    """Shows the problems with the settings in use as warnings on the list and edit pages of the settings."""

    settings_problems: Callable[[], list[str]]

    def changelist_view(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        self._warn(request)
        return super().changelist_view(request, extra_context)

    def changeform_view(self, request: HttpRequest, object_id=None, form_url="", extra_context=None) -> HttpResponse:
        self._warn(request)
        return super().changeform_view(request, object_id, form_url, extra_context)

    def _warn(self, request: HttpRequest) -> None:
        # Only when showing a page: a POST redirects, and the warnings would come twice on the next one.
        if request.method == "GET":
            for problem in type(self).settings_problems():
                messages.warning(request, problem)


@admin.register(DormancyPolicy)
class DormancyPolicyAdmin(SettingsProblemsAdminMixin, admin.ModelAdmin):
    """Each save is a new version (who and when are kept); the lifecycles are then rebuilt."""

    settings_problems = staticmethod(settings_problems)
    list_display = ("id", "rule", "k", "at_risk_k", "min_orders", "default_days", "min_days", "max_days", "p_alive_min",
                    "model_fit", "holdout_share", "attribution_window_days", "created_at", "created_by", "note")
    change_list_template = "admin/winback/dormancypolicy/change_list.html"
    add_form_template = "admin/winback/dormancypolicy/add_form.html"
    readonly_fields = ("created_at", "created_by")
    fields = (*POLICY_FIELDS, "note", "created_at", "created_by")

    def get_changeform_initial_data(self, request: HttpRequest) -> dict:
        current = DormancyPolicy.objects.order_by("-id").first()
        return {f: getattr(current, f) for f in POLICY_FIELDS} if current else {}

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False if obj is not None else super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def get_urls(self):
        adopt = self.admin_site.admin_view(require_POST(self.adopt_view))
        return [path("adopt/<int:tuning_id>/<str:key>/", adopt, name="winback_dormancypolicy_adopt"), *super().get_urls()]

    def changelist_view(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        tuning = tuning_latest()
        return super().changelist_view(request, {**(extra_context or {}), "tuning": tuning,
                                                 "can_adopt": self.has_add_permission(request)})

    def adopt_view(self, request: HttpRequest, tuning_id: int, key: str) -> HttpResponse:
        """One click: the candidate of a tuning run becomes the policy (a new version, by this manager)."""
        # Imported here: the backtest module loads scipy, which every web process would pay for at start-up.
        from winback.services.rule_tuning import lapse_rule_adopt

        if not self.has_add_permission(request):
            raise PermissionDenied
        tuning = get_object_or_404(RuleTuning, pk=tuning_id)
        try:
            policy = lapse_rule_adopt(user=request.user, tuning=tuning, key=key)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, _("Policy v%(version)s adopted: %(policy)s. The lifecycles are being rebuilt.")
                             % {"version": policy.pk, "policy": policy})
        return HttpResponseRedirect(reverse("admin:winback_dormancypolicy_changelist"))

    def save_model(self, request: HttpRequest, obj: DormancyPolicy, form, change: bool) -> None:
        created = policy_change(user=request.user, values={f: form.cleaned_data[f] for f in POLICY_FIELDS},
                                note=form.cleaned_data.get("note", ""))
        obj.pk = created.pk

    # --- The form says what saving does, and previews it (winback/services/policy_preview.py) ----------------

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context=None) -> HttpResponse:
        context = {**(extra_context or {}), "rebuild_customers": policy_rebuild_customers(),
                   # A version is never edited: one Save, which lands on the list of versions.
                   "show_save_and_continue": False, "show_save_and_add_another": False}
        if request.method == "POST" and "_preview" in request.POST:
            return self._preview_view(request, form_url, context)
        return super().add_view(request, form_url, context)

    def _preview_view(self, request: HttpRequest, form_url: str, extra_context: dict) -> HttpResponse:
        """The bound form again, unsaved, with what a save of its values would do; invalid values go the admin's
        usual way (their errors, nothing saved)."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        fieldsets = self.get_fieldsets(request, None)
        form_class = self.get_form(request, None, change=False, fields=flatten_fieldsets(fieldsets))
        form = form_class(request.POST, request.FILES)
        if not form.is_valid():
            return super().add_view(request, form_url, extra_context)
        try:
            preview = policy_preview(values={f: form.cleaned_data[f] for f in POLICY_FIELDS})
        except PolicyPreviewTooSlow:
            preview = None
            messages.warning(request, _("The preview took too long on this many customers and was stopped; "
                                        "saving still works."))
        admin_form = helpers.AdminForm(form, list(fieldsets), self.get_prepopulated_fields(request, None),
                                       self.get_readonly_fields(request, None), model_admin=self)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Add %s") % self.opts.verbose_name, "subtitle": None, "adminform": admin_form,
            "object_id": None, "original": None, "is_popup": False, "to_field": None,
            "media": self.media + admin_form.media, "inline_admin_formsets": [],
            "errors": helpers.AdminErrorList(form, []), "preserved_filters": self.get_preserved_filters(request),
            **extra_context,
        }
        if preview is not None:
            context.update(policy_preview=preview, preview_rows=_preview_rows(preview))
        request.current_app = self.admin_site.name
        return self.render_change_form(request, context, add=True, change=False, obj=None, form_url=form_url)

    def response_add(self, request: HttpRequest, obj: DormancyPolicy, post_url_continue=None) -> HttpResponse:
        count = policy_rebuild_customers()
        self.message_user(request, ngettext(
            "Policy v%(version)s saved; rebuilding the lifecycle of %(count)s customer with it, in the background: "
            "statuses and win-back cases follow when the rebuild ends.",
            "Policy v%(version)s saved; rebuilding the lifecycle of %(count)s customers with it, in the background: "
            "statuses and win-back cases follow when the rebuild ends.", count,
        ) % {"version": obj.pk, "count": formats.number_format(count, force_grouping=True)}, messages.SUCCESS)
        return self.response_post_save_add(request, obj)


def _preview_rows(preview: PolicyPreview) -> list[dict]:
    labels = {"lapsed": _("Lapsed"), "at_risk": _("At risk"), "cancelled": _("Cancelled"), "active": _("Active"),
              "prospect": _("Prospects (no order yet)")}
    rows = []
    for status, label in labels.items():
        now, then = getattr(preview.current, status), getattr(preview.proposed, status)
        rows.append({"status": status, "label": label, "current": now, "proposed": then,
                     "change": f"{then - now:+d}" if then != now else "0"})
    return rows


class AgeFilter(admin.SimpleListFilter):
    title = gettext_lazy("age")
    parameter_name = "age"
    BUCKETS = {"7": (0, 7), "30": (7, 30), "90": (30, 90), "old": (90, None)}

    def lookups(self, request, model_admin):
        return [("7", _("opened in the last 7 days")), ("30", _("7-30 days")), ("90", _("30-90 days")),
                ("old", _("over 90 days"))]

    def queryset(self, request, queryset):
        if self.value() not in self.BUCKETS:
            return queryset
        lo, hi = self.BUCKETS[self.value()]
        now = timezone.now()
        queryset = queryset.filter(opened_at__lte=now - dt.timedelta(days=lo))
        return queryset.filter(opened_at__gt=now - dt.timedelta(days=hi)) if hi else queryset


@admin.register(WinbackCase)
class WinbackCaseAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: a case changes only through winback/services/cases.py, each change with its CaseEvent (an
    edit here would leave none). Its history: Case events, filtered by case."""

    list_display = ("id", "customer", "kind", "status", "lapsed_at", "opened_at", "holdout", "is_recovery", "priority", "closed_at")
    list_filter = ("kind", "status", "holdout", "is_recovery", AgeFilter, KpiDrilldownFilter)
    search_fields = ("customer__external_id", "customer__name")
    date_hierarchy = "opened_at"
    list_select_related = ("customer",)
    raw_id_fields = ("customer", "lapse_event", "reactivation_order")
    show_full_result_count = False
    readonly_fields = ("customer", "kind", "lapse_event", "lapsed_at", "opened_at", "holdout", "is_recovery", "revenue_12m",
                       "priority", "status", "closed_at", "close_reason", "reactivation_order")


@admin.register(CaseEvent)
class CaseEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The audit trail of cases: every change of a case is one event (who or what, when, from, to, why),
    written with the change; managers browse it by case, agent, kind, actor and period. Nobody edits it."""

    list_display = ("at", "case", "kind", "from_status", "to_status", "agent", "actor", "reason")
    list_filter = (CustomerIdFilter.on("case__customer_id", "customer"), "kind", "actor",
                   ("agent", admin.RelatedOnlyFieldListFilter), "to_status")
    search_fields = ("=case__id", "case__customer__external_id")
    date_hierarchy = "at"
    list_select_related = ("case", "agent")
    raw_id_fields = ("case",)
    show_full_result_count = False


@admin.register(LifecycleEvent)
class LifecycleEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("customer", "kind", "occurred_at")
    list_filter = ("kind",)
    search_fields = ("customer__external_id",)
    list_select_related = ("customer",)
    show_full_result_count = False


@admin.register(LifecycleScanState)
class LifecycleScanStateAdmin(admin.ModelAdmin):
    list_display = ("built_with_policy", "last_full_at", "last_scan_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class LifecycleEventInline(admin.TabularInline):
    model = LifecycleEvent
    fields = ("kind", "occurred_at")
    readonly_fields = fields
    ordering = ("-occurred_at",)
    extra = 0
    can_delete = False
    verbose_name_plural = gettext_lazy("lifecycle events")

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class WinbackCaseInline(admin.TabularInline):
    model = WinbackCase
    fields = ("status", "lapsed_at", "opened_at", "holdout", "is_recovery", "priority", "closed_at", "close_reason")
    readonly_fields = fields
    ordering = ("-opened_at",)
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


# winback extends the crm customer page (crm itself knows nothing of winback).
_customer_admin = admin.site._registry[Customer]
_customer_admin.inlines = [*_customer_admin.inlines, LifecycleEventInline, WinbackCaseInline]


@admin.register(CallSettings)
class CallSettingsAdmin(SettingsProblemsAdminMixin, SingletonAdminMixin, admin.ModelAdmin):
    settings_problems = staticmethod(settings_problems)
    list_display = ("__str__", "calling_start", "calling_end", "max_attempts", "lease_minutes", "callback_grace_minutes", "updated_at")


class ContentTranslationsAdminMixin:
    """Where a manager's text (an offer, a reason, a step's message) is missing in a language: a column on the
    list and a line per language on the change page, saying what customers of that language get instead."""

    translations_related = "translations"

    class Media:
        css = {"all": ("winback/content_languages.css",)}

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).prefetch_related(self.translations_related)

    @admin.display(description=gettext_lazy("missing languages"))
    def missing_languages(self, obj) -> str:
        return content_missing_html(obj)

    @admin.display(description=gettext_lazy("languages"))
    def language_status(self, obj) -> str:
        if obj is None or obj.pk is None:
            return "-"
        missing = set(content_missing_languages(obj=obj))
        default = _language_name(settings.LANGUAGE_CODE)
        lines = []
        for code, _native in settings.LANGUAGES:
            if code == settings.LANGUAGE_CODE.lower():
                continue
            if code in missing:
                # Translators: on an offer's (reason's, step's) admin page, one line per language without a text.
                line = _("%(language)s: missing. Customers of this language get the text in the fallback language: "
                         "%(fallback)s.") % {"language": _language_name(code), "fallback": default}
                lines.append(("content-missing", line))
            else:
                lines.append(("content-complete", _("%(language)s: written.") % {"language": _language_name(code)}))
        return format_html('<ul class="content-languages">{}</ul>',
                           format_html_join("", '<li class="{}">{}</li>', lines))


def content_missing_html(obj) -> str:
    """The languages ``obj``'s text is missing in, as marks (codes, with the language's name on hover)."""
    missing = content_missing_languages(obj=obj)
    if not missing:
        return format_html('<span class="content-complete">{}</span>', _("none"))
    return format_html_join(" ", '<bdi class="content-missing" title="{}">{}</bdi>',
                            ((_language_name(code), code) for code in missing))


def _language_name(code: str) -> str:
    return get_language_info(code)["name_translated"]


class TranslationInlineMixin:
    """A translation's texts are typed in their own language: dir="auto" lets Arabic and Persian run right to
    left in the box (and Latin placeholders like {first_name} stay where they were typed) on any page language."""

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if field is not None and isinstance(field.widget, (forms.TextInput, forms.Textarea)):
            field.widget.attrs["dir"] = "auto"
        return field


class LeaveReasonTranslationInline(TranslationInlineMixin, admin.TabularInline):
    model = LeaveReasonTranslation
    extra = 0
    max_num = len(settings.LANGUAGES)


@admin.register(LeaveReason)
class LeaveReasonAdmin(ContentTranslationsAdminMixin, admin.ModelAdmin):
    list_display = ("name", "position", "active", "missing_languages")
    inlines = [LeaveReasonTranslationInline]
    readonly_fields = ("language_status",)
    list_editable = ("position", "active")

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # deactivate instead: past calls keep their reason


class OfferTranslationInline(TranslationInlineMixin, admin.StackedInline):
    # Stacked: a 300-character script does not fit a table's cell on a phone.
    model = OfferTranslation
    extra = 0
    max_num = len(settings.LANGUAGES)


@admin.register(Offer)
class OfferAdmin(ContentTranslationsAdminMixin, SettingsProblemsAdminMixin, admin.ModelAdmin):
    settings_problems = staticmethod(settings_problems)
    list_display = ("name", "script", "code_prefix", "valid_days", "active", "created_at", "missing_languages")
    inlines = [OfferTranslationInline]
    readonly_fields = ("language_status",)
    list_filter = ("active",)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Coupon)
class CouponAdmin(admin.ModelAdmin):
    list_display = ("code", "offer", "customer", "case", "issued_at", "expires_at", "redeemed_at")
    list_filter = ("offer", ("redeemed_at", admin.EmptyFieldListFilter), KpiDrilldownFilter)
    search_fields = ("code", "customer__external_id")
    date_hierarchy = "issued_at"
    list_select_related = ("offer", "customer")
    raw_id_fields = ("customer", "case", "redeemed_order")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Disposition)
class DispositionAdmin(admin.ModelAdmin):
    list_display = ("created_at", "agent", "case", "outcome", "reason", "coupon")
    list_filter = ("outcome", "reason", KpiDrilldownFilter)
    search_fields = ("case__customer__external_id", "note")
    date_hierarchy = "created_at"
    list_select_related = ("agent", "case", "reason", "coupon")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(RuleTuning)
class RuleTuningAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every backtest of the lapse rules on our orders; the latest is shown on the dormancy policy page."""

    list_display = ("ran_at", "calibration_end", "holdout_days", "customers", "policy", "best_key", "better", "reason")
