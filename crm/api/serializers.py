"""The API's output shapes; the input shapes are crm/inputs.py's (the CSV import shares them)."""

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from crm.models import Customer, Order


class CustomerSerializer(serializers.ModelSerializer):
    do_not_call = serializers.BooleanField(read_only=True)
    # Not format "email": the address is optional, and an absent one is the empty string.
    email = serializers.CharField(read_only=True, help_text=_("The e-mail address, or \"\" when there is none."))

    class Meta:
        model = Customer
        fields = [
            "external_id", "name", "email", "phone", "timezone", "locale", "acquired_at", "cancelled_at",
            "status", "email_consent", "email_consent_at", "email_consent_source", "do_not_call",
            "do_not_call_since", "last_order_at", "order_count", "total_spent", "created_at", "updated_at",
        ]
        read_only_fields = fields


class OrderSerializer(serializers.ModelSerializer):
    customer = serializers.SlugRelatedField(slug_field="external_id", read_only=True)

    class Meta:
        model = Order
        fields = ["external_id", "customer", "ordered_at", "amount", "currency", "coupon_code", "created_at"]
        read_only_fields = fields
