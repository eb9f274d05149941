"""What winback holds about a customer, for crm's personal-data export and erasure (crm.services.privacy).

Cases, their events, the calls' dispositions, coupons and lifecycle events carry no personal data but the
agents' free-text notes; an erasure blanks those and closes the open cases (winback/services/cases.py), and
keeps every row the KPIs count.
"""

import datetime as dt
from typing import Any

from crm.models import Customer
from crm.services.privacy import rows_json
from winback.models import CaseEvent, Coupon, Disposition, LifecycleEvent, WinbackCase
from winback.services.cases import case_notes_erase, cases_close_for_erasure


def winback_export(*, customer: Customer, **kwargs: Any) -> dict[str, list[dict[str, Any]]]:
    cases = list(WinbackCase.objects.filter(customer=customer).order_by("opened_at", "id"))
    events: dict[int, list[dict[str, Any]]] = {}
    for event in CaseEvent.objects.filter(case__customer=customer).order_by("at", "id"):
        events.setdefault(event.case_id, []).extend(rows_json([event]))
    calls: dict[int, list[dict[str, Any]]] = {}
    for disposition in Disposition.objects.filter(case__customer=customer).order_by("created_at", "id"):
        calls.setdefault(disposition.case_id, []).extend(rows_json([disposition]))
    return {
        "lifecycle_events": rows_json(LifecycleEvent.objects.filter(customer=customer).order_by("occurred_at", "id")),
        "winback_cases": [{**row, "events": events.get(row["id"], []), "dispositions": calls.get(row["id"], [])}
                          for row in rows_json(cases)],
        "coupons": rows_json(Coupon.objects.filter(customer=customer).order_by("issued_at", "id")),
    }


def winback_erase(*, customer: Customer, now: dt.datetime, **kwargs: Any) -> dict[str, int]:
    return {"cases_closed": cases_close_for_erasure(customer=customer, now=now),
            "call_notes": case_notes_erase(customer=customer)}
