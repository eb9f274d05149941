"""What other systems send, validated the same way whatever the door: the API's request bodies and the
CSV import's rows (crm/services/imports.py) share these shapes. The API's output shapes are crm/api/serializers.py's."""

from typing import Any

from django.contrib.auth import get_user_model
from django.db import models
from rest_framework import serializers

from core.bounds import text_error
from core.fields import BusinessDateTimeField
from crm.models import AMOUNT_MAX, LINE_QUANTITY_MAX, Complaint, Contact, Customer, Feedback
from crm.validators import phone_normalize, validate_locale, validate_time_zone

# Free text (notes, summaries, comments) from the API: far more than a person writes, far less than a body.
MAX_TEXT_LENGTH = 10_000
# A list of orders is written in one transaction: this many at most per request (a bigger load is a CSV import).
MAX_ORDERS_PER_REQUEST = 1_000
# Far more than a basket holds (crm/services/orders.py refuses more from any door).
MAX_LINES_PER_ORDER = 500


class KeySlugRelatedField(serializers.SlugRelatedField):
    """A record named by its key; a key no row can have (a NUL, which PostgreSQL text cannot hold) is simply
    not found instead of failing in the database."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str) and text_error(data):
            self.fail("does_not_exist", slug_name=self.slug_field, value=data)
        return super().to_internal_value(data)


class CustomerInputSerializer(serializers.Serializer):
    """Shape checks only; the service normalises the phone, derives the time zone and validates the rest."""

    external_id = serializers.CharField(max_length=64)
    name = serializers.CharField(max_length=200)
    email = serializers.EmailField(required=False, allow_blank=True)
    phone = serializers.CharField(max_length=40, required=False, allow_blank=True)
    timezone = serializers.CharField(max_length=64, required=False, allow_blank=True, validators=[validate_time_zone])
    locale = serializers.CharField(max_length=16, required=False, validators=[validate_locale])
    acquired_at = BusinessDateTimeField(required=False, allow_null=True)
    email_consent = serializers.ChoiceField(choices=Customer.Consent.choices, required=False)
    email_consent_at = BusinessDateTimeField(required=False)
    email_consent_source = serializers.CharField(max_length=100, required=False, allow_blank=True)
    do_not_call = serializers.BooleanField(required=False)

    def validate_phone(self, value: str) -> str:
        return phone_normalize(value)


class CustomerCancelSerializer(serializers.Serializer):
    cancelled_at = BusinessDateTimeField()


class OrderLineInputSerializer(serializers.Serializer):
    # The bounds are the model's (crm.models.OrderLine).
    product_id = serializers.CharField(max_length=64)
    product_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    category = serializers.CharField(max_length=100, required=False, allow_blank=True,
                                     help_text="Blank: unknown (cross-sell counts only known categories).")
    quantity = serializers.IntegerField(min_value=1, max_value=LINE_QUANTITY_MAX, required=False, default=1)
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0, max_value=AMOUNT_MAX,
                                      help_text="The line's total (quantity x unit price, after discounts).")


class OrderInputSerializer(serializers.Serializer):
    external_id = serializers.CharField(max_length=64)
    customer = serializers.CharField(max_length=64, help_text="The customer's external_id.")
    ordered_at = BusinessDateTimeField()
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0)
    currency = serializers.CharField(max_length=3, required=False, allow_blank=True)
    coupon_code = serializers.CharField(max_length=64, required=False, allow_blank=True)
    lines = serializers.ListField(
        child=OrderLineInputSerializer(), required=False, max_length=MAX_LINES_PER_ORDER,
        help_text=f"Optional: the products on the order, at most {MAX_LINES_PER_ORDER:,}. They must sum exactly to "
                  "amount. A repeat of a stored order that gives lines must give the same lines (or none).")


def _user_field(**kwargs) -> serializers.SlugRelatedField:
    return KeySlugRelatedField(
        slug_field="username", queryset=get_user_model().objects.all(), required=False, allow_null=True, **kwargs
    )


class RecordSerializer(serializers.ModelSerializer):
    # Every instant a record takes is a business instant (1970 to a year ahead, offsets within +-15:59).
    serializer_field_mapping = {**serializers.ModelSerializer.serializer_field_mapping,
                                models.DateTimeField: BusinessDateTimeField}
    customer = KeySlugRelatedField(slug_field="external_id", queryset=Customer.objects.all())
    external_id = serializers.CharField(max_length=64, required=False)


class ContactSerializer(RecordSerializer):
    agent = _user_field()

    class Meta:
        model = Contact
        fields = ["external_id", "customer", "channel", "direction", "occurred_at", "agent", "outcome", "notes", "created_at"]
        read_only_fields = ["created_at"]
        extra_kwargs = {"notes": {"max_length": MAX_TEXT_LENGTH}}


class ComplaintSerializer(RecordSerializer):
    owner = _user_field()

    class Meta:
        model = Complaint
        fields = [
            "external_id", "customer", "opened_at", "category", "severity", "summary", "status", "resolved_at",
            "resolution", "owner", "created_at", "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]
        extra_kwargs = {"summary": {"max_length": MAX_TEXT_LENGTH}, "resolution": {"max_length": MAX_TEXT_LENGTH}}


class FeedbackSerializer(RecordSerializer):
    class Meta:
        model = Feedback
        fields = ["external_id", "customer", "kind", "score", "comment", "responded_at", "created_at"]
        read_only_fields = ["created_at"]
        extra_kwargs = {"comment": {"max_length": MAX_TEXT_LENGTH}}
