import json

from django import forms
from django.apps import apps
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.translation import get_language_info, gettext, gettext_lazy as _

from core.admin_mixins import ReadOnlyAdminMixin
from core.isolation import sentence_isolated
from core.selectors import business_settings
from core.locale_format import money_local
from core.templatetags.locale_format import date_html
from core.drilldown import KpiDrilldownFilter
from crm.models import (
    AcquisitionSpend, AuditEntry, Complaint, Contact, Customer, Feedback, Order, OrderLine, SuppressionEntry,
)
from crm.selectors import audit_change_lines, customer_audit, customer_summary, customer_timeline
from crm.services.audit import Actor
from crm.timeline import timeline_params
from crm.services.privacy import MAX_REASON, customer_erase, customer_export
from crm.services.customers import (
    CUSTOMER_INPUT_FIELDS, customer_create, customer_do_not_call_clear, customer_protected_changes, customer_update,
)
from crm.services.records import record_create, record_update
from crm.services.spend import (
    MONTH_FORMAT, spend_clean, spend_delete, spend_month_parse, spend_update, spend_upsert,
)


class IsolatedDataColumns:
    """List columns of data that stay in their own direction inside a right-to-left page: the customer (a name
    and a Latin key), keys and codes (left to right), amounts with their currency."""

    @admin.display(description=_("customer"), ordering="customer")
    def customer_isolated(self, obj) -> str:
        return format_html("<bdi>{}</bdi>", obj.customer) if obj.customer_id else "-"

    @admin.display(description=_("external id"), ordering="external_id")
    def external_id_ltr(self, obj) -> str:
        return format_html('<bdi dir="ltr">{}</bdi>', obj.external_id)


class ServiceAdmin(IsolatedDataColumns, admin.ModelAdmin):
    """Saves go through the services so the admin leaves the same audit rows as the API."""

    def save_model(self, request: HttpRequest, obj, form, change: bool) -> None:
        actor = Actor.of(request.user, via="admin")
        data = {f: form.cleaned_data[f] for f in form.changed_data if f in form.cleaned_data}
        if change:
            updated = record_update(actor=actor, record=obj.__class__.objects.get(pk=obj.pk), data=data)
        else:
            updated = record_create(actor=actor, model=obj.__class__, data=dict(form.cleaned_data))
        obj.pk = updated.pk

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class CustomerForm(forms.ModelForm):
    clear_do_not_call_reason = forms.CharField(
        label=_("Clear do-not-call: reason"), required=False, max_length=500,
        help_text=_("Managers only. Fill in to take the customer off do-not-call; the reason is kept in the audit trail."),
    )

    user = None  # set per request by CustomerAdmin.get_form

    class Meta:
        model = Customer
        fields = "__all__"
        # Always left to right, whatever the page's direction: a key, an address, a number.
        widgets = {
            "external_id": forms.TextInput(attrs={"dir": "ltr"}),
            "email": forms.EmailInput(attrs={"dir": "ltr"}),
            "phone": forms.TextInput(attrs={"dir": "ltr"}),
            "timezone": forms.TextInput(attrs={"dir": "ltr"}),
        }

    def clean(self) -> dict:
        data = super().clean()
        if self.instance.pk:
            given = {f: data[f] for f in self.changed_data if f in CUSTOMER_INPUT_FIELDS and f in data}
            for field, message in customer_protected_changes(data=given, current=self.instance).items():
                self.add_error(field if field in self.fields else None, message)
        if data.get("clear_do_not_call_reason") and not (self.user and self.user.has_perm("crm.clear_do_not_call")):
            self.add_error("clear_do_not_call_reason", _("Only a manager can clear do-not-call."))
        return data


class PrivacyReasonForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"), max_length=MAX_REASON, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text=_("Why (e.g. the request's ticket number). Kept in the audit trail; do not write the person's "
                    "name or address here."))


def readable_changes(entry: AuditEntry) -> str:
    """An audit row's changes as a small list, "field: old -> new" (the arrow turns right to left); the values
    are isolated, so a date or an address keeps its order in a right-to-left page."""
    lines = audit_change_lines(entity=entry.entity, changes=entry.changes)
    if not lines:
        return "-"
    items = format_html_join("", "<li>{}</li>", (
        (format_html('<span class="c360-field">{}:</span> <bdi>{}</bdi>', line.field, line.new) if line.old is None else
         format_html('<span class="c360-field">{}:</span> <del><bdi>{}</bdi></del> <span class="c360-arrow" '
                     'aria-hidden="true">&rarr;</span> <ins><bdi>{}</bdi></ins>', line.field, line.old, line.new),)
        for line in lines))
    return format_html('<ul class="c360-changes">{}</ul>', items)


def _audit_what(entry: AuditEntry) -> str:
    try:
        entity = apps.get_model(entry.entity)._meta.verbose_name
    except (LookupError, ValueError):
        entity = entry.entity
    # Translators: the "What" column of a customer's audit trail, e.g. "Updated (order)".
    return gettext("%(action)s (%(entity)s)") % {"action": entry.get_action_display(), "entity": entity}


def audit_trail_url(*, customer_id: int) -> str:
    return reverse("admin:crm_auditentry_changelist") + "?" + urlencode({"customer__id__exact": customer_id})


class CustomerLocaleFilter(admin.SimpleListFilter):
    """The customers' languages by their names in the page's language (a code such as "pt-br" is not a word
    a manager reads), the code where Django does not know the language."""

    title = _("locale")
    parameter_name = "locale"

    def lookups(self, request, model_admin):
        codes = Customer.objects.order_by("locale").values_list("locale", flat=True).distinct()
        return [(code, _language_name(code)) for code in codes]

    def queryset(self, request, queryset):
        return queryset.filter(locale=self.value()) if self.value() else queryset


def _language_name(code: str) -> str:
    try:
        return str(get_language_info(code.lower())["name_translated"])
    except KeyError:
        try:
            return str(get_language_info(code.split("-")[0].lower())["name_translated"])
        except KeyError:
            return code


@admin.register(Customer)
class CustomerAdmin(IsolatedDataColumns, admin.ModelAdmin):
    """The customer 360: a read-only summary, the edit form (with the privacy actions and the inlines other
    apps add), then the timeline of everything about the customer (templates/admin/crm/customer/)."""

    form = CustomerForm
    actions = ["export_personal_data", "erase_personal_data"]
    list_display = ("external_id_ltr", "name", "email_ltr", "status", "order_count", "total_spent_money",
                    "last_order_on", "do_not_call_flag")
    list_display_links = ("external_id_ltr",)
    list_filter = ("status", "email_consent", CustomerLocaleFilter, ("do_not_call_since", admin.EmptyFieldListFilter), ("cancelled_at", admin.EmptyFieldListFilter), KpiDrilldownFilter)
    search_fields = ("external_id", "name", "email", "phone")
    date_hierarchy = "acquired_at"
    list_per_page = 50
    show_full_result_count = False
    readonly_fields = ("status", "cancelled_at", "do_not_call_since", "last_order_at", "order_count", "total_spent", "created_at", "updated_at", "audit_trail", "history_links", "suppressed_at", "erased_at")
    fieldsets = (
        (None, {"fields": ("external_id", "name", "email", "phone", "timezone", "locale", "history_links")}),
        (_("Lifecycle"), {"fields": ("status", "acquired_at", "cancelled_at", "last_order_at", "order_count", "total_spent")}),
        (_("Consent"), {"fields": ("email_consent", "email_consent_at", "email_consent_source", "do_not_call_since",
                                "clear_do_not_call_reason", "suppressed_at", "erased_at")}),
        (_("Audit trail"), {"classes": ("collapse",), "fields": ("audit_trail", "created_at", "updated_at")}),
    )

    @admin.display(boolean=True, description=_("Do-not-call"))
    def do_not_call_flag(self, obj: Customer) -> bool:
        return obj.do_not_call

    # The list's data columns: keys and addresses left to right, amounts and dates as the language writes them.
    @admin.display(description=_("email"), ordering="email")
    def email_ltr(self, obj: Customer) -> str:
        return format_html('<bdi dir="ltr">{}</bdi>', obj.email) if obj.email else "-"

    @admin.display(description=_("total spent"), ordering="total_spent")
    def total_spent_money(self, obj: Customer) -> str:
        return format_html("<bdi>{}</bdi>", money_local(amount=obj.total_spent, currency=settings.DEFAULT_CURRENCY))

    @admin.display(description=_("last order at"), ordering="last_order_at")
    def last_order_on(self, obj: Customer) -> str:
        return format_html("<bdi>{}</bdi>", date_html(obj.last_order_at)) if obj.last_order_at else "-"

    class Media:
        # The summary, the timeline and the audit trail's lists (templates/admin/crm/customer/).
        css = {"all": ("crm/customer360.css",)}

    @admin.display(description=_("Changes"))
    def audit_trail(self, obj: Customer) -> str:
        if not obj.pk:
            return "-"
        rows = format_html_join(
            "", "<tr><td><bdi>{} {}</bdi></td><td><bdi>{}</bdi></td><td>{}</td><td>{}</td></tr>",
            ((date_html(a.at), f"{timezone.localtime(a.at):%H:%M}", a.actor_label, _audit_what(a),
              readable_changes(a)) for a in customer_audit(customer=obj)),
        )
        return format_html('<div class="c360-scroll"><table class="c360-audit"><thead><tr><th>{}</th><th>{}</th>'
                           '<th>{}</th><th>{}</th></tr></thead><tbody>{}</tbody></table></div>', gettext("When"),
                           gettext("Who"), gettext("What"), gettext("Changes"), rows)

    def render_change_form(self, request: HttpRequest, context: dict, add: bool = False, change: bool = False,
                           form_url: str = "", obj: Customer | None = None) -> HttpResponse:
        if obj is not None and obj.pk:
            kind, page, errors = timeline_params(kind=request.GET.get("timeline_type"),
                                                 page=request.GET.get("timeline_page"))
            context["customer_summary"] = customer_summary(customer=obj)
            context["customer_timeline"] = customer_timeline(customer_id=obj.pk, kind=kind, page=page, errors=errors)
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    @admin.display(description=_("History"))
    def history_links(self, obj: Customer) -> str:
        if not obj.pk:
            return "-"
        events = reverse("admin:winback_caseevent_changelist") + "?" + urlencode({"customer": obj.pk})
        return format_html('<a href="{}" id="audit-trail-link">{}</a> &middot; <a href="{}">{}</a>',
                           audit_trail_url(customer_id=obj.pk), gettext("Audit trail of this customer"),
                           events, gettext("Case events of this customer"))

    def has_export_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("crm.export_customer")

    def has_erase_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("crm.erase_customer")

    def _privacy_page(self, request: HttpRequest, queryset, *, form: PrivacyReasonForm, action: str, title: str,
                      explanation: str, submit_label: str, dangerous: bool) -> TemplateResponse:
        return TemplateResponse(request, "admin/crm/privacy_request.html", {
            **self.admin_site.each_context(request), "opts": self.model._meta, "title": title, "form": form,
            "customers": list(queryset), "action": action, "explanation": explanation, "submit_label": submit_label,
            "dangerous": dangerous, "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME})

    @admin.action(description=_("Export personal data"), permissions=["export"])
    def export_personal_data(self, request: HttpRequest, queryset) -> HttpResponse | None:
        customers = list(queryset[:2])
        if len(customers) != 1:
            self.message_user(request, gettext("Select exactly one customer to export."), messages.ERROR)
            return None
        form = PrivacyReasonForm(request.POST if request.POST.get("post") else None)
        if not form.is_valid():
            return self._privacy_page(
                request, queryset, form=form, action="export_personal_data", title=gettext("Export personal data"),
                explanation=gettext("One JSON file of everything held about this customer. The export is recorded "
                                    "in the audit trail with your reason."),
                submit_label=gettext("Export"), dangerous=False)
        data = customer_export(actor=Actor.of(request.user, via="admin"), customer=customers[0],
                               reason=form.cleaned_data["reason"])
        response = HttpResponse(json.dumps(data, ensure_ascii=False, indent=2), content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="customer-{customers[0].pk}-personal-data.json"'
        return response

    @admin.action(description=_("Erase personal data"), permissions=["erase"])
    def erase_personal_data(self, request: HttpRequest, queryset) -> HttpResponse | None:
        form = PrivacyReasonForm(request.POST if request.POST.get("post") else None)
        if not form.is_valid():
            return self._privacy_page(
                request, queryset, form=form, action="erase_personal_data", title=gettext("Erase personal data"),
                explanation=gettext(
                    "The name, email, phone, notes, comments and messages of these customers are erased for good, "
                    "and their email, phone and key go on the suppression list: they are never contacted again. "
                    "Orders, cases and their history stay, anonymised, so past KPIs do not change."),
                submit_label=gettext("Erase for good"), dangerous=True)
        actor = Actor.of(request.user, via="admin")
        for customer in queryset:
            try:
                result = customer_erase(actor=actor, customer=customer, reason=form.cleaned_data["reason"])
            except ValidationError as exc:
                self.message_user(request, " ".join(exc.messages), messages.ERROR)
                continue
            self.message_user(request, result.summary(), messages.INFO if result.already else messages.SUCCESS)
        return None

    def get_form(self, request: HttpRequest, obj=None, change: bool = False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"user": request.user})

    def save_model(self, request: HttpRequest, obj: Customer, form, change: bool) -> None:
        actor = Actor.of(request.user, via="admin")
        if change:
            data = {f: form.cleaned_data[f] for f in form.changed_data if f in CUSTOMER_INPUT_FIELDS}
            customer = customer_update(actor=actor, customer=Customer.objects.get(pk=obj.pk), data=data)
            reason = form.cleaned_data.get("clear_do_not_call_reason", "")
            if reason and customer.do_not_call:
                customer_do_not_call_clear(actor=actor, customer=customer, reason=reason)
        else:
            data = {f: v for f, v in form.cleaned_data.items() if f in CUSTOMER_INPUT_FIELDS}
            obj.pk = customer_create(actor=actor, data=data)[0].pk

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class OrderLineInline(ReadOnlyAdminMixin, admin.TabularInline):
    """An order's lines, as immutable as the order (they come with it, or from the order_lines import)."""

    model = OrderLine
    fields = ("position", "product_id", "product_name", "category", "quantity", "amount")
    readonly_fields = fields
    extra = 0


@admin.register(Order)
class OrderAdmin(IsolatedDataColumns, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Orders arrive from other systems (API, import) and never change: read-only here."""

    inlines = (OrderLineInline,)

    list_display = ("external_id_ltr", "customer_isolated", "ordered_at", "amount_money", "coupon_code_ltr")
    list_display_links = ("external_id_ltr",)
    list_filter = ("currency",)
    search_fields = ("external_id", "customer__external_id", "coupon_code")
    date_hierarchy = "ordered_at"
    list_select_related = ("customer",)
    raw_id_fields = ("customer",)
    show_full_result_count = False
    readonly_fields = ("import_run_link",)

    @admin.display(description=_("import run"))
    def import_run_link(self, obj: Order) -> str:
        """The batch run of the CSV import that brought this order (none for the API's orders)."""
        if obj.import_run_id is None:
            return "-"
        url = reverse("admin:core_batchrun_change", args=[obj.import_run_id])
        return format_html('<a href="{}">{}</a>', url, obj.import_run_id)

    @admin.display(description=_("amount"), ordering="amount")
    def amount_money(self, obj: Order) -> str:
        return format_html("<bdi>{}</bdi>", money_local(amount=obj.amount, currency=obj.currency))

    @admin.display(description=_("coupon code"), ordering="coupon_code")
    def coupon_code_ltr(self, obj: Order) -> str:
        return format_html('<bdi dir="ltr">{}</bdi>', obj.coupon_code) if obj.coupon_code else "-"


@admin.register(Contact)
class ContactAdmin(ServiceAdmin):
    list_display = ("occurred_at", "customer_isolated", "channel", "direction", "outcome", "agent")
    list_filter = ("channel", "direction", "outcome")
    search_fields = ("customer__external_id", "customer__name", "notes")
    date_hierarchy = "occurred_at"
    list_select_related = ("customer", "agent")
    raw_id_fields = ("customer",)
    exclude = ("external_id",)


@admin.register(Complaint)
class ComplaintAdmin(ServiceAdmin):
    list_display = ("opened_at", "customer_isolated", "category", "severity", "status", "resolved_at", "owner")
    list_filter = ("status", "category", "severity")
    search_fields = ("customer__external_id", "customer__name", "summary")
    date_hierarchy = "opened_at"
    list_select_related = ("customer", "owner")
    raw_id_fields = ("customer",)
    exclude = ("external_id",)


@admin.register(Feedback)
class FeedbackAdmin(ServiceAdmin):
    list_display = ("responded_at", "customer_isolated", "kind", "score")
    list_filter = ("kind", "score", KpiDrilldownFilter)
    search_fields = ("customer__external_id", "comment")
    date_hierarchy = "responded_at"
    list_select_related = ("customer",)
    raw_id_fields = ("customer",)
    exclude = ("external_id",)


class CustomerIdFilter(admin.SimpleListFilter):
    """The one customer whose rows are shown, by raw id (the customer page links here; their external id is
    searchable). ``path`` is the lookup from the listed model to the customer's id."""

    title = _("customer")
    path = "customer_id"

    @classmethod
    def on(cls, path: str, parameter: str) -> type["CustomerIdFilter"]:
        return type(f"CustomerIdFilter_{parameter}", (cls,), {"path": path, "parameter_name": parameter})

    def lookups(self, request, model_admin):
        value = self.value()
        customer = Customer.objects.filter(pk=value).first() if value and value.isdigit() else None
        return [(str(customer.pk), str(customer))] if customer else []

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        return queryset.filter(**{self.path: int(value)}) if value.isdigit() else queryset.none()


@admin.register(AuditEntry)
class AuditEntryAdmin(IsolatedDataColumns, ReadOnlyAdminMixin, admin.ModelAdmin):
    """The audit trail: read-only for everyone, superusers included (no add, change or delete; no delete
    action). Filter by customer (from their page, or search their external id), by actor (the user; or search
    the label, e.g. "import_csv" or "task:"), action, entity and period (the date hierarchy, or
    ?at__gte=...&at__lt=... in the address)."""

    list_display = ("at", "actor_isolated", "action", "entity", "entity_id", "customer_isolated", "changes_readable")
    list_filter = (CustomerIdFilter.on("customer_id", "customer__id__exact"), ("actor", admin.RelatedOnlyFieldListFilter), "action", "entity")
    search_fields = ("actor_label", "customer__external_id")
    date_hierarchy = "at"
    list_select_related = ("customer",)
    show_full_result_count = False
    fields = ("at", "actor", "actor_label", "action", "entity", "entity_id", "customer", "changes_readable")
    readonly_fields = ("changes_readable",)

    class Media:
        css = {"all": ("crm/customer360.css",)}

    @admin.display(description=_("actor label"), ordering="actor_label")
    def actor_isolated(self, obj: AuditEntry) -> str:
        return format_html("<bdi>{}</bdi>", obj.actor_label)

    @admin.display(description=_("Changes"))
    def changes_readable(self, obj: AuditEntry) -> str:
        return readable_changes(obj)


@admin.register(SuppressionEntry)
class SuppressionEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Keyed hashes only: nothing here names a person. Entries are made by erasures and never removed here."""

    list_display = ("created_at", "kind", "digest", "key_id", "source")
    list_filter = ("kind", "source")
    search_fields = ("digest",)
    show_full_result_count = False


class AcquisitionSpendForm(forms.ModelForm):
    """The month is typed as YYYY-MM (a spend is a month's, not a day's); every value is checked by the
    service the API and the import use, so each says the same thing."""

    month = forms.CharField(label=_("month"), max_length=10,
                            widget=forms.TextInput(attrs={"dir": "ltr", "placeholder": "2026-03"}))

    class Meta:
        model = AcquisitionSpend
        fields = ("month", "channel", "amount", "currency")
        widgets = {"currency": forms.TextInput(attrs={"dir": "ltr", "size": 4})}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["month"] = f"{self.instance.month:%Y-%m}"
        else:
            self.initial.setdefault("currency", business_settings().currency)
        self.fields["currency"].required = False
        # The admin shows help texts as HTML: the form and the months are isolated data.
        self.fields["month"].help_text = sentence_isolated(gettext(
            # Translators: format is YYYY-MM (kept as it is), example 2026-03, earliest 1970-01.
            "%(format)s, e.g. %(example)s (the Gregorian month), from %(earliest)s to a year ahead."),
            format=MONTH_FORMAT, example="2026-03", earliest="1970-01")
        self.fields["currency"].help_text = _("The business currency; spend in another currency is refused "
                                              "(the KPIs add amounts).")

    def clean(self) -> dict:
        data = super().clean()
        try:
            # The model's own check of the month (a date) must see the date, even when another field is wrong.
            data["month"] = spend_month_parse(data.get("month"))
        except ValidationError:
            pass  # said below, with the other fields' reasons
        try:
            data.update(spend_clean(month=data.get("month"), channel=data.get("channel"), amount=data.get("amount"),
                                    currency=data.get("currency"), render=sentence_isolated))
        except ValidationError as exc:
            for field, messages_ in exc.message_dict.items():
                if field not in self.errors:  # a field's own check already said why
                    self.add_error(field, messages_)
            return data
        if AcquisitionSpend.objects.filter(month=data["month"], channel=data["channel"]).exclude(
                pk=self.instance.pk).exists():
            self.add_error("channel", sentence_isolated(gettext(
                "A spend of %(month)s for this channel already exists: change that one instead."),
                month=f"{data['month']:%Y-%m}"))
        return data

    def validate_unique(self) -> None:
        # clean() said it in words of the month and channel; the constraint's generic message would repeat it.
        pass


class SpendChannelFilter(admin.SimpleListFilter):
    """By channel, each name isolated (a Latin channel name inside a right-to-left page) and the blank
    channel named for what it means."""

    title = _("channel")
    parameter_name = "channel"

    def lookups(self, request: HttpRequest, model_admin) -> list[tuple[str, str]]:
        channels = AcquisitionSpend.objects.order_by("channel").values_list("channel", flat=True).distinct()
        # "-" stands for the blank channel: an empty parameter would mean "no filter".
        return [(channel or "-", format_html("<bdi>{}</bdi>", channel) if channel else gettext("All channels"))
                for channel in channels]

    def queryset(self, request: HttpRequest, queryset):
        value = self.value()
        if value is None:
            return queryset
        return queryset.filter(channel="" if value == "-" else value)


@admin.register(AcquisitionSpend)
class AcquisitionSpendAdmin(admin.ModelAdmin):
    """Managers enter a month's spend (optionally per channel). Saves and deletes go through the service, so
    they leave the same audit rows as the API and the import."""

    form = AcquisitionSpendForm
    list_display = ("month_ltr", "channel_or_all", "amount_money", "updated_at")
    list_display_links = ("month_ltr",)
    list_filter = (SpendChannelFilter,)
    search_fields = ("channel",)
    date_hierarchy = "month"
    ordering = ("-month", "channel")

    @admin.display(description=_("month"), ordering="month")
    def month_ltr(self, obj: AcquisitionSpend) -> str:
        return format_html('<bdi dir="ltr">{}</bdi>', f"{obj.month:%Y-%m}")

    @admin.display(description=_("channel"), ordering="channel")
    def channel_or_all(self, obj: AcquisitionSpend) -> str:
        # Translators: the channel column of acquisition spend, for a spend not split by channel.
        return format_html("<bdi>{}</bdi>", obj.channel) if obj.channel else gettext("All channels")

    @admin.display(description=_("amount"), ordering="amount")
    def amount_money(self, obj: AcquisitionSpend) -> str:
        return format_html("<bdi>{}</bdi>", money_local(amount=obj.amount, currency=obj.currency))

    def save_model(self, request: HttpRequest, obj: AcquisitionSpend, form, change: bool) -> None:
        actor = Actor.of(request.user, via="admin")
        data = {f: form.cleaned_data[f] for f in ("month", "channel", "amount", "currency")}
        if change:
            saved = spend_update(actor=actor, spend=AcquisitionSpend.objects.get(pk=obj.pk), data=data)
        else:
            saved, _outcome = spend_upsert(actor=actor, **data)
        obj.pk = saved.pk

    def delete_model(self, request: HttpRequest, obj: AcquisitionSpend) -> None:
        spend_delete(actor=Actor.of(request.user, via="admin"), spend=obj)

    def delete_queryset(self, request: HttpRequest, queryset) -> None:
        actor = Actor.of(request.user, via="admin")
        for spend in queryset:
            spend_delete(actor=actor, spend=spend)
