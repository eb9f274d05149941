"""Calls a cadence asks for (an NPS detractor, a discount email stopped by an open complaint).

The call goes to the agents' queue as a recovery call: onto the customer's open win-back case when there
is one, else onto a care case (one open per customer, never counted in the win-back KPIs).
"""

import datetime as dt
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Sum

from crm.models import Customer
from winback.models import WinbackCase


@transaction.atomic
def care_call_request(*, customer: Customer, now: dt.datetime) -> WinbackCase | None:
    """Put a recovery call for the customer in the queue; None when they must not be called (holdout)."""
    open_cases = {c.kind: c for c in WinbackCase.objects.select_for_update().filter(
        customer=customer, status=WinbackCase.Status.OPEN)}
    case = open_cases.get(WinbackCase.Kind.WINBACK) or open_cases.get(WinbackCase.Kind.CARE)
    if case is not None:
        if case.holdout:
            return None
        claimed = case.claimed_by_id is not None and case.lease_until and case.lease_until > now
        changes = {"is_recovery": True, "priority": case.revenue_12m * 2, "updated_at": now}
        if not claimed and case.callback_at is None:
            changes |= {"ready": True, "next_call_at": None}
        WinbackCase.objects.filter(pk=case.pk).update(**changes)
        case.refresh_from_db()
        return case
    revenue = (customer.orders.filter(ordered_at__gt=now - dt.timedelta(days=365), ordered_at__lte=now)
               .aggregate(s=Sum("amount"))["s"]) or Decimal("0")
    try:
        with transaction.atomic():
            return WinbackCase.objects.create(
                customer=customer, kind=WinbackCase.Kind.CARE, lapsed_at=now, opened_at=now, is_recovery=True,
                revenue_12m=revenue, priority=revenue * 2, ready=True, close_reason="", holdout=False,
            )
    except IntegrityError:  # opened by a concurrent request: the one open care case serves both
        return WinbackCase.objects.get(customer=customer, status=WinbackCase.Status.OPEN, kind=WinbackCase.Kind.CARE)
