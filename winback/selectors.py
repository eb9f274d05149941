from django.db.models import QuerySet

from crm.models import Customer
from winback.models import LifecycleEvent, WinbackCase


def customer_lifecycle_events(*, customer: Customer) -> QuerySet[LifecycleEvent]:
    return LifecycleEvent.objects.filter(customer=customer).order_by("occurred_at", "id")


def case_list() -> QuerySet[WinbackCase]:
    return WinbackCase.objects.select_related("customer").order_by("-opened_at", "-id")
