from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from core.admin_mixins import ReadOnlyAdminMixin
from crm.models import AuditEntry, Complaint, Contact, Customer, Feedback, Order
from crm.selectors import customer_audit, customer_timeline
from crm.services.audit import Actor
from crm.services.customers import (
    CUSTOMER_INPUT_FIELDS, customer_create, customer_do_not_call_clear, customer_protected_changes, customer_update,
)
from crm.services.records import record_create, record_update


class ServiceAdmin(admin.ModelAdmin):
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

    def clean(self) -> dict:
        data = super().clean()
        if self.instance.pk:
            given = {f: data[f] for f in self.changed_data if f in CUSTOMER_INPUT_FIELDS and f in data}
            for field, message in customer_protected_changes(data=given, current=self.instance).items():
                self.add_error(field if field in self.fields else None, message)
        if data.get("clear_do_not_call_reason") and not (self.user and self.user.has_perm("crm.clear_do_not_call")):
            self.add_error("clear_do_not_call_reason", _("Only a manager can clear do-not-call."))
        return data


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    form = CustomerForm
    list_display = ("external_id", "name", "email", "status", "order_count", "total_spent", "last_order_at", "do_not_call_flag")
    list_filter = ("status", "email_consent", "locale", ("do_not_call_since", admin.EmptyFieldListFilter), ("cancelled_at", admin.EmptyFieldListFilter))
    search_fields = ("external_id", "name", "email", "phone")
    date_hierarchy = "acquired_at"
    list_per_page = 50
    show_full_result_count = False
    readonly_fields = ("status", "cancelled_at", "do_not_call_since", "last_order_at", "order_count", "total_spent", "created_at", "updated_at", "timeline", "audit_trail")
    fieldsets = (
        (None, {"fields": ("external_id", "name", "email", "phone", "timezone", "locale")}),
        ("Lifecycle", {"fields": ("status", "acquired_at", "cancelled_at", "last_order_at", "order_count", "total_spent")}),
        ("Consent", {"fields": ("email_consent", "email_consent_at", "email_consent_source", "do_not_call_since",
                                "clear_do_not_call_reason")}),
        ("Timeline", {"fields": ("timeline",)}),
        ("Audit trail", {"classes": ("collapse",), "fields": ("audit_trail", "created_at", "updated_at")}),
    )

    @admin.display(boolean=True, description="DNC")
    def do_not_call_flag(self, obj: Customer) -> bool:
        return obj.do_not_call

    @admin.display(description="Orders, contacts, complaints and feedback")
    def timeline(self, obj: Customer) -> str:
        if not obj.pk:
            return "-"
        rows = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((f"{i.at:%Y-%m-%d %H:%M}", i.kind, i.summary) for i in customer_timeline(customer=obj)),
        )
        return format_html('<table class="timeline"><thead><tr><th>When</th><th>What</th><th>Details</th></tr></thead><tbody>{}</tbody></table>', rows) if rows else "No history yet."

    @admin.display(description="Changes")
    def audit_trail(self, obj: Customer) -> str:
        if not obj.pk:
            return "-"
        rows = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{} {}</td><td><code>{}</code></td></tr>",
            ((f"{a.at:%Y-%m-%d %H:%M}", a.actor_label, a.action, a.entity, a.changes) for a in customer_audit(customer=obj)),
        )
        return format_html("<table><tbody>{}</tbody></table>", rows)

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


@admin.register(Order)
class OrderAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Orders arrive from other systems (API, import) and never change: read-only here."""

    list_display = ("external_id", "customer", "ordered_at", "amount", "currency", "coupon_code")
    list_filter = ("currency",)
    search_fields = ("external_id", "customer__external_id", "coupon_code")
    date_hierarchy = "ordered_at"
    list_select_related = ("customer",)
    raw_id_fields = ("customer",)
    show_full_result_count = False


@admin.register(Contact)
class ContactAdmin(ServiceAdmin):
    list_display = ("occurred_at", "customer", "channel", "direction", "outcome", "agent")
    list_filter = ("channel", "direction", "outcome")
    search_fields = ("customer__external_id", "customer__name", "notes")
    date_hierarchy = "occurred_at"
    list_select_related = ("customer", "agent")
    raw_id_fields = ("customer",)
    exclude = ("external_id",)


@admin.register(Complaint)
class ComplaintAdmin(ServiceAdmin):
    list_display = ("opened_at", "customer", "category", "severity", "status", "resolved_at", "owner")
    list_filter = ("status", "category", "severity")
    search_fields = ("customer__external_id", "customer__name", "summary")
    date_hierarchy = "opened_at"
    list_select_related = ("customer", "owner")
    raw_id_fields = ("customer",)
    exclude = ("external_id",)


@admin.register(Feedback)
class FeedbackAdmin(ServiceAdmin):
    list_display = ("responded_at", "customer", "kind", "score")
    list_filter = ("kind", "score")
    search_fields = ("customer__external_id", "comment")
    date_hierarchy = "responded_at"
    list_select_related = ("customer",)
    raw_id_fields = ("customer",)
    exclude = ("external_id",)


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("at", "actor_label", "action", "entity", "entity_id", "customer")
    list_filter = ("action", "entity")
    search_fields = ("actor_label", "customer__external_id")
    list_select_related = ("customer",)
    show_full_result_count = False
