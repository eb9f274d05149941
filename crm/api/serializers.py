"""The API's output shapes; the input shapes are crm/inputs.py's (the CSV import shares them)."""

from decimal import Decimal

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from crm.models import SPEND_AMOUNT_MAX, AcquisitionSpend, Customer, Order, OrderLine


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


class OrderLineSerializer(serializers.ModelSerializer):
    class Meta:
        model = OrderLine
        fields = ["position", "product_id", "product_name", "category", "quantity", "amount"]
        read_only_fields = fields


class OrderSerializer(serializers.ModelSerializer):
    customer = serializers.SlugRelatedField(slug_field="external_id", read_only=True)
    lines = OrderLineSerializer(many=True, read_only=True, help_text=_(
        "The products on the order, by position; empty when none were given."))

    class Meta:
        model = Order
        fields = ["external_id", "customer", "ordered_at", "amount", "currency", "coupon_code", "lines", "created_at"]
        read_only_fields = fields


# --- Acquisition spend (docs/metrics.md section 6) -----------------------------------------------------

class AcquisitionSpendSerializer(serializers.ModelSerializer):
    class Meta:
        model = AcquisitionSpend
        fields = ["id", "month", "channel", "amount", "currency", "created_at", "updated_at"]
        read_only_fields = fields
        extra_kwargs = {"month": {"help_text": _("The month's first day (YYYY-MM-01).")}}


class AcquisitionSpendInputSerializer(serializers.Serializer):
    """The shape only; crm/services/spend.py checks the values (month bounds, business currency), so the
    admin and the CSV import refuse the same things with the same words."""

    month = serializers.CharField(max_length=10, help_text=_(
        "The month: YYYY-MM (e.g. 2026-03) or its first day (2026-03-01); from 1970-01 to a year ahead."))
    channel = serializers.CharField(max_length=40, required=False, allow_blank=True, default="", help_text=_(
        "e.g. search ads, social, referral; blank or absent: all channels together. With the month, the key: "
        "posting a month and channel again replaces its amount."))
    amount = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=Decimal("0"),
                                      max_value=SPEND_AMOUNT_MAX, help_text=_("What was spent, at most 2 decimals."))
    currency = serializers.CharField(max_length=3, required=False, allow_blank=True, default="", help_text=_(
        "The business currency's ISO 4217 code; blank or absent means it. Any other currency is refused: the "
        "KPIs add amounts."))
