"""What the predictions hold about a customer, for crm's personal-data export and erasure (crm.services.privacy).

A prediction is a profile of the person's behaviour (how likely they still buy, what they are worth): it is
exported with the rest, and an erasure deletes it (the KPIs count orders and events, never predictions;
the nightly fit scores the erased customer's anonymous history again, as it does every order history)."""

import datetime as dt
from typing import Any

from crm.models import Customer
from crm.services.privacy import rows_json
from predictions.models import CustomerPrediction


def predictions_export(*, customer: Customer, **kwargs: Any) -> dict[str, list[dict[str, Any]]]:
    return {"predictions": rows_json(CustomerPrediction.objects.filter(customer=customer))}


def predictions_erase(*, customer: Customer, now: dt.datetime, **kwargs: Any) -> dict[str, int]:
    deleted, _ = CustomerPrediction.objects.filter(customer=customer).delete()
    return {"predictions": deleted}
