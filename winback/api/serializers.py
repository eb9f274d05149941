from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from crm.models import Contact
from winback.models import LifecycleEvent, WinbackCase


class LifecycleEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = LifecycleEvent
        fields = ["kind", "occurred_at"]


class CustomerLifecycleSerializer(serializers.Serializer):
    customer = serializers.CharField(help_text=_("The customer's external_id."))
    status = serializers.CharField(help_text=_("The customer's lifecycle status (as on the customer)."))
    events = LifecycleEventSerializer(many=True, help_text=_("Oldest first, each dated when it happened."))
    definition = serializers.CharField()


class CaseSerializer(serializers.ModelSerializer):
    customer = serializers.SlugRelatedField(slug_field="external_id", read_only=True)
    reactivation_order = serializers.SlugRelatedField(slug_field="external_id", read_only=True, allow_null=True)

    class Meta:
        model = WinbackCase
        fields = [
            "id", "customer", "status", "lapsed_at", "opened_at", "holdout", "is_recovery", "revenue_12m",
            "priority", "closed_at", "close_reason", "reactivation_order",
        ]
        read_only_fields = fields


class CallbackSerializer(serializers.Serializer):
    case = serializers.IntegerField(source="pk")
    customer = serializers.CharField(source="customer.name", help_text=_("The customer's name."))
    phone = serializers.CharField(source="customer.phone")
    callback_at = serializers.DateTimeField()


class IssuedCouponSerializer(serializers.Serializer):
    code = serializers.CharField()
    expires_at = serializers.DateTimeField(allow_null=True)
    offer = serializers.CharField(source="offer.name", help_text=_("The offer's name."))


class DispositionResultSerializer(serializers.Serializer):
    case = serializers.IntegerField(source="case_id")
    outcome = serializers.CharField()
    outcome_label = serializers.SerializerMethodField()
    callback_at = serializers.DateTimeField(allow_null=True)
    coupon = IssuedCouponSerializer(allow_null=True, help_text=_("The coupon to read out, when an offer was made."))

    def get_outcome_label(self, disposition) -> str:
        return str(Contact.Outcome(disposition.outcome).label)


class ReleaseResultSerializer(serializers.Serializer):
    case = serializers.IntegerField()
    released = serializers.BooleanField()
