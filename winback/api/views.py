import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.generics import get_object_or_404
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.bounds import MAX_SETTING_DAYS
from core.fields import BusinessDateTimeFilter
from core.permissions import ModelPermissions
from crm.models import Customer
from winback.api.serializers import CaseSerializer, CustomerLifecycleSerializer
from core.roles import user_is_manager
from winback.api.queue import IsAgentOrManager
from winback.models import Coupon, Offer
from winback.selectors import agent_cases_visible, case_list, customer_lifecycle_events


class CustomerLifecycleView(APIView):
    """The customer's lifecycle events (docs/metrics.md section 1), oldest first, each dated when it happened."""

    permission_classes = [ModelPermissions]
    queryset = Customer.objects.all()

    @extend_schema(responses=CustomerLifecycleSerializer)
    def get(self, request: Request, external_id: str) -> Response:
        customer = get_object_or_404(Customer, external_id=external_id)
        events = customer_lifecycle_events(customer=customer)
        return Response(CustomerLifecycleSerializer({
            "customer": customer.external_id,
            "status": customer.status,
            "events": events,
            "definition": "docs/metrics.md s.1: lapse when no order follows order i within clamp(k * mean gap, min_days, "
                          "max_days) days (default_days before min_orders); the event is dated at the crossing.",
        }).data)


class CaseFilter(django_filters.FilterSet):
    customer = django_filters.CharFilter(field_name="customer__external_id")
    opened_after = BusinessDateTimeFilter(field_name="opened_at", lookup_expr="gte")
    opened_before = BusinessDateTimeFilter(field_name="opened_at", lookup_expr="lt")

    class Meta:
        model = case_list().model
        fields = ["status", "holdout", "is_recovery", "customer"]


class CaseViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Win-back cases: managers see all; an agent sees the case they hold and their callbacks (others: 404)."""

    queryset = case_list()
    serializer_class = CaseSerializer
    permission_classes = [IsAgentOrManager]
    filterset_class = CaseFilter
    ordering_fields = ["priority", "opened_at", "lapsed_at", "closed_at"]

    def get_queryset(self):
        if user_is_manager(self.request.user):
            return case_list()
        return case_list().filter(pk__in=agent_cases_visible(user=self.request.user).values("pk"))


class OfferSerializer(serializers.ModelSerializer):
    class Meta:
        model = Offer
        fields = ["id", "name", "script", "code_prefix", "valid_days", "active", "created_at"]
        read_only_fields = ["id", "created_at"]
        # A coupon expires valid_days after it is issued: bounded like every day count a manager sets.
        extra_kwargs = {"valid_days": {"max_value": MAX_SETTING_DAYS}}


class CouponSerializer(serializers.ModelSerializer):
    customer = serializers.SlugRelatedField(slug_field="external_id", read_only=True)
    redeemed_order = serializers.SlugRelatedField(slug_field="external_id", read_only=True, allow_null=True)

    class Meta:
        model = Coupon
        fields = ["code", "offer", "customer", "case", "issued_at", "expires_at", "redeemed_at", "redeemed_order"]
        read_only_fields = fields


class OfferViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                   mixins.UpdateModelMixin, viewsets.GenericViewSet):
    """Offers agents can make (managers)."""

    queryset = Offer.objects.order_by("name")
    serializer_class = OfferSerializer
    permission_classes = [ModelPermissions]


class CouponViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Issued coupons and their redemption (managers)."""

    queryset = Coupon.objects.select_related("customer", "redeemed_order").order_by("-issued_at")
    serializer_class = CouponSerializer
    permission_classes = [ModelPermissions]
    lookup_field = "code"
    filterset_fields = ["offer", "case"]
