from typing import Any

import django_filters
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings

from core.api import Conflict, error_body
from core.fields import BusinessDateTimeFilter
from core.permissions import ModelPermissions
from crm.api.serializers import (
    AcquisitionSpendInputSerializer, AcquisitionSpendSerializer, CustomerSerializer, OrderSerializer,
)
from crm.inputs import (
    MAX_ORDERS_PER_REQUEST, ComplaintSerializer, ContactSerializer, CustomerCancelSerializer,
    CustomerInputSerializer, FeedbackSerializer, OrderInputSerializer,
)
from crm.models import AcquisitionSpend, Complaint, Contact, Customer, Feedback, Order
from crm.services.audit import Actor
from crm.services.customers import customer_cancel, customer_create, customer_update
from crm.services.errors import ConflictError, ItemErrors
from crm.services.orders import order_create, order_input_parse, orders_create_bulk
from crm.services.records import record_create_once, record_update
from crm.services.spend import spend_delete, spend_month_parse, spend_update, spend_upsert

LOOKUP = r"[^/]+"


def api_actor(request: Request) -> Actor:
    return Actor.of(request.user, via="api")


class CustomerFilter(django_filters.FilterSet):
    updated_after = BusinessDateTimeFilter(field_name="updated_at", lookup_expr="gte")
    last_order_before = BusinessDateTimeFilter(field_name="last_order_at", lookup_expr="lt")
    last_order_after = BusinessDateTimeFilter(field_name="last_order_at", lookup_expr="gte")

    class Meta:
        model = Customer
        fields = ["status", "email", "email_consent", "locale"]


class CustomerViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Customers by their external_id. POST with a known external_id and the same data answers 200 with
    the existing customer; different data is a 409."""

    queryset = Customer.objects.select_related("prediction").order_by("id")
    serializer_class = CustomerSerializer
    permission_classes = [ModelPermissions]
    lookup_field = "external_id"
    lookup_value_regex = LOOKUP
    filterset_class = CustomerFilter
    search_fields = ["name", "email", "external_id", "phone"]
    ordering_fields = ["id", "last_order_at", "total_spent", "order_count", "acquired_at", "updated_at"]

    @extend_schema(request=CustomerInputSerializer, responses={201: CustomerSerializer, 200: CustomerSerializer, 409: OpenApiResponse(description="Exists with different data")})
    def create(self, request: Request, **kwargs: Any) -> Response:
        data = CustomerInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            customer, created = customer_create(actor=api_actor(request), data=data.validated_data)
        except ConflictError as exc:
            raise Conflict(exc.message) from exc
        return Response(CustomerSerializer(customer).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(request=CustomerInputSerializer, responses=CustomerSerializer)
    def update(self, request: Request, external_id: str, partial: bool = False, **kwargs: Any) -> Response:
        customer = self.get_object()
        data = CustomerInputSerializer(data=request.data, partial=partial)
        data.is_valid(raise_exception=True)
        payload = dict(data.validated_data)
        if payload.get("external_id", customer.external_id) != customer.external_id:
            return Response(
                error_body([{"field": "external_id", "message": "The external_id of a customer cannot change."}]),
                status=status.HTTP_400_BAD_REQUEST,
            )
        try:
            customer = customer_update(actor=api_actor(request), customer=customer, data=payload)
        except ConflictError as exc:  # it would undo an opt-out or a do-not-call
            raise Conflict(exc.message) from exc
        return Response(CustomerSerializer(customer).data)

    @extend_schema(request=CustomerInputSerializer, responses=CustomerSerializer)
    def partial_update(self, request: Request, external_id: str, **kwargs: Any) -> Response:
        return self.update(request, external_id, partial=True)

    @extend_schema(request=CustomerCancelSerializer, responses=CustomerSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, external_id: str, **kwargs: Any) -> Response:
        customer = self.get_object()
        data = CustomerCancelSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        customer = customer_cancel(actor=api_actor(request), customer=customer, cancelled_at=data.validated_data["cancelled_at"])
        return Response(CustomerSerializer(customer).data)


class OrderFilter(django_filters.FilterSet):
    customer = django_filters.CharFilter(field_name="customer__external_id")
    ordered_after = BusinessDateTimeFilter(field_name="ordered_at", lookup_expr="gte")
    ordered_before = BusinessDateTimeFilter(field_name="ordered_at", lookup_expr="lt")

    class Meta:
        model = Order
        fields = ["customer", "currency", "coupon_code"]


def _one_or_many(name: str, serializer: type) -> PolymorphicProxySerializer:
    return PolymorphicProxySerializer(component_name=name, serializers=[serializer, serializer(many=True)],
                                      resource_type_field_name=None, many=False)


_ONE_OR_MANY_ORDERS_IN = _one_or_many("OrderInputOneOrMany", OrderInputSerializer)
_ONE_OR_MANY_ORDERS = _one_or_many("OrderOneOrMany", OrderSerializer)


class OrderViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Orders are immutable facts. POST one order, or a list (all-or-nothing). Idempotent by external_id."""

    queryset = Order.objects.select_related("customer").prefetch_related("lines").order_by("-ordered_at", "-id")
    serializer_class = OrderSerializer
    permission_classes = [ModelPermissions]
    lookup_field = "external_id"
    lookup_value_regex = LOOKUP
    filterset_class = OrderFilter
    ordering_fields = ["ordered_at", "amount", "id"]

    @extend_schema(
        request=_ONE_OR_MANY_ORDERS_IN,
        responses={201: _ONE_OR_MANY_ORDERS, 200: _ONE_OR_MANY_ORDERS, 400: OpenApiResponse(description="Item errors"), 409: OpenApiResponse(description="Conflict")},
        description="Body: one order object, or a list of them (at most 1,000). A list is written all-or-nothing; "
                    "each error names the item's index and field. The answer has the body's shape. An order may "
                    "carry `lines` (at most 500), which must sum exactly to its amount or the order is refused "
                    "(field \"lines\"); an error in a line names it as \"lines.<position>.<field>\", from 1.",
    )
    def create(self, request: Request, **kwargs: Any) -> Response:
        many = isinstance(request.data, list)
        shape = (OrderInputSerializer(data=request.data, many=True, max_length=MAX_ORDERS_PER_REQUEST) if many
                 else OrderInputSerializer(data=request.data))
        if not shape.is_valid():
            return Response(_item_errors_body(shape.errors, many), status=status.HTTP_400_BAD_REQUEST)
        rows = shape.validated_data if many else [shape.validated_data]
        items = []
        errors: list[dict[str, Any]] = []
        for index, row in enumerate(rows):
            item, row_errors = order_input_parse(row)
            items.append(item)
            errors += [{"index": index, "field": f, "message": m} for f, m in row_errors.items()]
        if errors:
            return Response(_errors_body(errors, many), status=status.HTTP_400_BAD_REQUEST)
        try:
            if many:
                orders, result = orders_create_bulk(actor=api_actor(request), items=items)
                code = status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
                return Response(OrderSerializer(orders, many=True).data, status=code)
            order, created = order_create(actor=api_actor(request), item=items[0])
        except ConflictError as exc:
            raise Conflict(exc.message) from exc
        except ItemErrors as exc:
            code = status.HTTP_409_CONFLICT if exc.only_conflicts else status.HTTP_400_BAD_REQUEST
            return Response(_errors_body(exc.item_errors, many), status=code)
        return Response(OrderSerializer(order).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


def _errors_body(errors: list[dict[str, Any]], many: bool) -> dict[str, Any]:
    if not many:
        errors = [{k: v for k, v in e.items() if k != "index"} for e in errors]
    detail = f"{len(errors)} error(s); nothing was written." if many else None
    return error_body(errors, detail=detail)


def _item_errors_body(serializer_errors: Any, many: bool) -> dict[str, Any]:
    if not many:
        return _errors_body([{"field": f, "message": m} for f, m in _field_messages(serializer_errors)], many)
    # DRF reports a list's errors as {index: {field: [...]}} (3.18) or as a list with {} for good items;
    # a non-integer key is an error about the list itself (e.g. it is too long).
    pairs = serializer_errors.items() if isinstance(serializer_errors, dict) else enumerate(serializer_errors)
    errors = []
    for index, item in pairs:
        if not isinstance(index, int):
            errors.append({"index": None, "field": "", "message": " ".join(map(str, item))})
            continue
        errors += [{"index": index, "field": f, "message": m} for f, m in _field_messages(item or {})]
    return _errors_body(errors, many)


def _field_messages(item_errors: Any) -> list[tuple[str, str]]:
    """(field, message) for one item's errors; field "" when the item itself is wrong (null, not an object):
    DRF gives those as a bare list of messages, or under its non-field key."""
    if not isinstance(item_errors, dict):
        return [("", " ".join(map(str, item_errors)))]
    pairs = []
    for f, m in item_errors.items():
        name = "" if f == api_settings.NON_FIELD_ERRORS_KEY else f
        if isinstance(m, dict):  # a list field's items, e.g. an order's lines: {index: {field: [...]}}
            # Named as order_input_parse names them: "lines.2.amount" is the second line's, counted from 1.
            for index, inner in m.items():
                where = f"{name}.{index + 1}" if isinstance(index, int) else name
                pairs += [(f"{where}.{g}" if g else where, message) for g, message in _field_messages(inner)]
        else:
            pairs.append((name, " ".join(map(str, m))))
    return pairs


class RecordViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    permission_classes = [ModelPermissions]
    lookup_field = "external_id"
    lookup_value_regex = LOOKUP
    filterset_fields = ["customer__external_id"]

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Idempotent by external_id: the same record again answers 200 with it; different data is a 409."""
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            record, created = record_create_once(
                actor=api_actor(request), model=self.queryset.model, data=serializer.validated_data)
        except ConflictError as exc:
            raise Conflict(exc.message) from exc
        return Response(self.get_serializer(record).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    def perform_update(self, serializer):
        serializer.instance = record_update(actor=api_actor(self.request), record=serializer.instance, data=serializer.validated_data)


def _creates_or_conflicts(serializer: type) -> Any:
    return extend_schema_view(create=extend_schema(responses={
        201: serializer, 409: OpenApiResponse(description="A record with this external_id exists")}))


@_creates_or_conflicts(ContactSerializer)
class ContactViewSet(RecordViewSet):
    queryset = Contact.objects.select_related("customer", "agent").order_by("-occurred_at", "-id")
    serializer_class = ContactSerializer
    filterset_fields = ["customer__external_id", "channel", "direction", "outcome"]


@_creates_or_conflicts(ComplaintSerializer)
class ComplaintViewSet(RecordViewSet):
    queryset = Complaint.objects.select_related("customer", "owner").order_by("-opened_at", "-id")
    serializer_class = ComplaintSerializer
    filterset_fields = ["customer__external_id", "status", "category", "severity"]


@_creates_or_conflicts(FeedbackSerializer)
class FeedbackViewSet(RecordViewSet):
    queryset = Feedback.objects.select_related("customer").order_by("-responded_at", "-id")
    serializer_class = FeedbackSerializer
    filterset_fields = ["customer__external_id", "kind"]


# --- Acquisition spend (docs/metrics.md section 6) -----------------------------------------------------

class _MonthFilter(django_filters.CharFilter):
    """A month as YYYY-MM or YYYY-MM-01; a bad one is a 400 naming the parameter, as a body's field would be."""

    def __init__(self, *args: Any, param: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.param = param

    def filter(self, qs: Any, value: str) -> Any:
        if value in (None, ""):
            return qs
        try:
            month = spend_month_parse(value)
        except DjangoValidationError as exc:
            raise ValidationError({self.param: exc.messages}) from None
        return super().filter(qs, month)


class AcquisitionSpendFilter(django_filters.FilterSet):
    month_from = _MonthFilter(field_name="month", lookup_expr="gte", param="month_from")  # included
    month_to = _MonthFilter(field_name="month", lookup_expr="lte", param="month_to")  # included
    # ?channel= with an empty value filters nothing (django-filter skips empty values): the rows for all
    # channels together (blank channel) are asked for by name.
    all_channels = django_filters.ChoiceFilter(
        choices=[("true", "true"), ("false", "false")], method="_all_channels", help_text="true: only the rows for all channels together (blank channel); "
                                          "false: only the rows of one channel.")

    class Meta:
        model = AcquisitionSpend
        fields = ["channel", "currency"]

    def _all_channels(self, queryset: QuerySet[AcquisitionSpend], name: str, value: str) -> QuerySet[AcquisitionSpend]:
        return queryset.filter(channel="") if value == "true" else queryset.exclude(channel="")


class AcquisitionSpendViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    """Acquisition spend per month and channel (blank channel: all channels), the numerator of CAC.
    POST sets a (month, channel)'s amount: 201 when new, 200 when it existed (updated or the same again)."""

    queryset = AcquisitionSpend.objects.order_by("-month", "channel")
    serializer_class = AcquisitionSpendSerializer
    permission_classes = [ModelPermissions]
    filterset_class = AcquisitionSpendFilter
    ordering_fields = ["month", "channel", "amount"]

    @extend_schema(request=AcquisitionSpendInputSerializer,
                   responses={201: AcquisitionSpendSerializer, 200: AcquisitionSpendSerializer})
    def create(self, request: Request, **kwargs: Any) -> Response:
        data = AcquisitionSpendInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        spend, outcome = spend_upsert(actor=api_actor(request), **data.validated_data)
        return Response(AcquisitionSpendSerializer(spend).data,
                        status=status.HTTP_201_CREATED if outcome == "created" else status.HTTP_200_OK)

    @extend_schema(request=AcquisitionSpendInputSerializer, responses=AcquisitionSpendSerializer)
    def update(self, request: Request, pk: str, partial: bool = False, **kwargs: Any) -> Response:
        spend = self.get_object()
        data = AcquisitionSpendInputSerializer(data=request.data, partial=partial)
        data.is_valid(raise_exception=True)
        # A partial body leaves out what it does not change (the serializer's defaults apply only to a full one).
        payload = {k: v for k, v in data.validated_data.items() if not partial or k in request.data}
        spend = spend_update(actor=api_actor(request), spend=spend, data=payload)
        return Response(AcquisitionSpendSerializer(spend).data)

    @extend_schema(request=AcquisitionSpendInputSerializer, responses=AcquisitionSpendSerializer)
    def partial_update(self, request: Request, pk: str, **kwargs: Any) -> Response:
        return self.update(request, pk, partial=True)

    def perform_destroy(self, instance: AcquisitionSpend) -> None:
        spend_delete(actor=api_actor(self.request), spend=instance)
