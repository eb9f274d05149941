"""What the outbox holds about a customer, for crm's personal-data export and erasure (crm.services.privacy).

A touchpoint row keeps its channel, step, times and status (the caps and the KPIs count them); what was
rendered for the person (the subject or SMS text) and the last error, which may quote the address, are
blanked; the provider's message id stays (it names our message, not the person). Touchpoints still to send are cancelled with the opt-out reason: the person asked to hear
nothing more from us.
"""

import datetime as dt
from typing import Any

from crm.models import Customer
from crm.services.privacy import rows_json
from touchpoints.models import Touchpoint


def touchpoints_export(*, customer: Customer, **kwargs: Any) -> dict[str, list[dict[str, Any]]]:
    return {"touchpoints": rows_json(Touchpoint.objects.filter(customer=customer).order_by("due_at", "id"))}


def touchpoints_erase(*, customer: Customer, now: dt.datetime, **kwargs: Any) -> dict[str, int]:
    mine = Touchpoint.objects.filter(customer=customer)
    cancelled = mine.filter(status__in=[Touchpoint.Status.SCHEDULED, Touchpoint.Status.SENDING]).update(
        status=Touchpoint.Status.CANCELLED, reason=Touchpoint.Reason.OPTED_OUT, lease_until=None,
        queued_until=None, updated_at=now)
    blanked = mine.exclude(subject="", last_error="").update(subject="", last_error="")
    return {"touchpoints_cancelled": cancelled, "touchpoints": blanked}
