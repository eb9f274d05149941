import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets
from rest_framework.generics import get_object_or_404
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.permissions import ModelPermissions
from crm.models import Customer
from winback.api.serializers import CaseSerializer, LifecycleEventSerializer
from winback.selectors import case_list, customer_lifecycle_events


class CustomerLifecycleView(APIView):
    """The customer's lifecycle events (METRICS.md section 1), oldest first, each dated when it happened."""

    permission_classes = [ModelPermissions]
    queryset = Customer.objects.all()

    @extend_schema(responses=LifecycleEventSerializer(many=True))
    def get(self, request: Request, external_id: str) -> Response:
        customer = get_object_or_404(Customer, external_id=external_id)
        events = customer_lifecycle_events(customer=customer)
        return Response({
            "customer": customer.external_id,
            "status": customer.status,
            "events": LifecycleEventSerializer(events, many=True).data,
            "definition": "METRICS.md s.1: lapse when no order follows order i within clamp(k * mean gap, min_days, "
                          "max_days) days (default_days before min_orders); the event is dated at the crossing.",
        })


class CaseFilter(django_filters.FilterSet):
    customer = django_filters.CharFilter(field_name="customer__external_id")
    opened_after = django_filters.IsoDateTimeFilter(field_name="opened_at", lookup_expr="gte")
    opened_before = django_filters.IsoDateTimeFilter(field_name="opened_at", lookup_expr="lt")

    class Meta:
        model = case_list().model
        fields = ["status", "holdout", "is_recovery", "customer"]


class CaseViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Win-back cases, for managers (agents work their case through the queue endpoints)."""

    queryset = case_list()
    serializer_class = CaseSerializer
    permission_classes = [ModelPermissions]
    filterset_class = CaseFilter
    ordering_fields = ["priority", "opened_at", "lapsed_at", "closed_at"]
