from rest_framework import serializers

from winback.models import LifecycleEvent, WinbackCase


class LifecycleEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = LifecycleEvent
        fields = ["kind", "occurred_at"]


class CaseSerializer(serializers.ModelSerializer):
    customer = serializers.SlugRelatedField(slug_field="external_id", read_only=True)
    reactivation_order = serializers.SlugRelatedField(slug_field="external_id", read_only=True)

    class Meta:
        model = WinbackCase
        fields = [
            "id", "customer", "status", "lapsed_at", "opened_at", "holdout", "is_recovery", "revenue_12m",
            "priority", "closed_at", "close_reason", "reactivation_order",
        ]
        read_only_fields = fields
