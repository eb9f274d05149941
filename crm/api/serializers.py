from django.contrib.auth import get_user_model
from rest_framework import serializers

from core.fields import BusinessDateTimeField

from crm.models import Complaint, Contact, Customer, Feedback, Order
from crm.validators import phone_normalize, validate_locale, validate_time_zone


class CustomerSerializer(serializers.ModelSerializer):
    do_not_call = serializers.BooleanField(read_only=True)

    class Meta:
        model = Customer
        fields = [
            "external_id", "name", "email", "phone", "timezone", "locale", "acquired_at", "cancelled_at",
            "status", "email_consent", "email_consent_at", "email_consent_source", "do_not_call",
            "do_not_call_since", "last_order_at", "order_count", "total_spent", "created_at", "updated_at",
        ]
        read_only_fields = fields


class CustomerInputSerializer(serializers.Serializer):
    """Shape checks only; the service normalises the phone, derives the time zone and validates the rest."""

    external_id = serializers.CharField(max_length=64)
    name = serializers.CharField(max_length=200)
    email = serializers.EmailField(required=False, allow_blank=True)
    phone = serializers.CharField(max_length=40, required=False, allow_blank=True)
    timezone = serializers.CharField(max_length=64, required=False, allow_blank=True, validators=[validate_time_zone])
    locale = serializers.CharField(max_length=16, required=False, validators=[validate_locale])
    acquired_at = serializers.DateTimeField(required=False, allow_null=True)
    email_consent = serializers.ChoiceField(choices=Customer.Consent.choices, required=False)
    email_consent_at = serializers.DateTimeField(required=False)
    email_consent_source = serializers.CharField(max_length=100, required=False, allow_blank=True)
    do_not_call = serializers.BooleanField(required=False)

    def validate_phone(self, value: str) -> str:
        return phone_normalize(value)


class CustomerCancelSerializer(serializers.Serializer):
    cancelled_at = serializers.DateTimeField()


class OrderSerializer(serializers.ModelSerializer):
    customer = serializers.SlugRelatedField(slug_field="external_id", read_only=True)

    class Meta:
        model = Order
        fields = ["external_id", "customer", "ordered_at", "amount", "currency", "coupon_code", "created_at"]
        read_only_fields = fields


class OrderInputSerializer(serializers.Serializer):
    external_id = serializers.CharField(max_length=64)
    customer = serializers.CharField(max_length=64, help_text="The customer's external_id.")
    ordered_at = BusinessDateTimeField()
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0)
    currency = serializers.CharField(max_length=3, required=False, allow_blank=True)
    coupon_code = serializers.CharField(max_length=64, required=False, allow_blank=True)


def _user_field(**kwargs) -> serializers.SlugRelatedField:
    return serializers.SlugRelatedField(
        slug_field="username", queryset=get_user_model().objects.all(), required=False, allow_null=True, **kwargs
    )


class RecordSerializer(serializers.ModelSerializer):
    customer = serializers.SlugRelatedField(slug_field="external_id", queryset=Customer.objects.all())
    external_id = serializers.CharField(max_length=64, required=False)


class ContactSerializer(RecordSerializer):
    agent = _user_field()

    class Meta:
        model = Contact
        fields = ["external_id", "customer", "channel", "direction", "occurred_at", "agent", "outcome", "notes", "created_at"]
        read_only_fields = ["created_at"]


class ComplaintSerializer(RecordSerializer):
    owner = _user_field()

    class Meta:
        model = Complaint
        fields = [
            "external_id", "customer", "opened_at", "category", "severity", "summary", "status", "resolved_at",
            "resolution", "owner", "created_at", "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]


class FeedbackSerializer(RecordSerializer):
    class Meta:
        model = Feedback
        fields = ["external_id", "customer", "kind", "score", "comment", "responded_at", "created_at"]
        read_only_fields = ["created_at"]
