"""The API's output shapes; the input shapes are crm/inputs.py's (the CSV import shares them)."""

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from crm.models import Customer, Order


def _prediction(field: type[serializers.Field], name: str, help_text: str, **kwargs) -> serializers.Field:
    # The predictions app's row (related name "prediction"); null before any usable fit or for a customer
    # the models cannot speak for. crm imports nothing of predictions: the relation is by name.
    return field(source=f"prediction.{name}", read_only=True, allow_null=True, help_text=help_text, **kwargs)


class CustomerSerializer(serializers.ModelSerializer):
    do_not_call = serializers.BooleanField(read_only=True)
    # docs/metrics.md section 7 defines each.
    p_alive = _prediction(serializers.FloatField, "p_alive", _(
        "Probability the customer is still buying (BG/NBD; MBG/NBD for a customer with no repeat purchase, see "
        "p_alive_model), as of the last fit. Null before any fit."))
    p_alive_model = _prediction(serializers.CharField, "p_alive_model", _(
        "Which model gave p_alive: \"bgnbd\" or \"mbgnbd\". Null before any fit."))
    expected_purchases_90d = _prediction(serializers.FloatField, "expected_purchases_90d", _(
        "Expected purchase days in the next 90 days (the same model as p_alive). Null before any fit."))
    expected_order_value = _prediction(serializers.DecimalField, "expected_order_value", _(
        "Expected spend per purchase (Gamma-Gamma). Null before any usable Gamma-Gamma fit."),
        max_digits=14, decimal_places=2)
    predicted_clv_12m = _prediction(serializers.DecimalField, "predicted_clv_12m", _(
        "Discounted gross margin of the next 12 months' expected purchases (monthly discount rate and margin "
        "from the business settings). Null before any usable fit of both models."), max_digits=16, decimal_places=2)
    # Not format "email": the address is optional, and an absent one is the empty string.
    email = serializers.CharField(read_only=True, help_text=_("The e-mail address, or \"\" when there is none."))

    class Meta:
        model = Customer
        fields = [
            "external_id", "name", "email", "phone", "timezone", "locale", "acquired_at", "cancelled_at",
            "status", "email_consent", "email_consent_at", "email_consent_source", "do_not_call",
            "do_not_call_since", "last_order_at", "order_count", "total_spent", "p_alive", "p_alive_model",
            "expected_purchases_90d", "expected_order_value", "predicted_clv_12m", "created_at", "updated_at",
        ]
        read_only_fields = fields


class OrderSerializer(serializers.ModelSerializer):
    customer = serializers.SlugRelatedField(slug_field="external_id", read_only=True)

    class Meta:
        model = Order
        fields = ["external_id", "customer", "ordered_at", "amount", "currency", "coupon_code", "created_at"]
        read_only_fields = fields
