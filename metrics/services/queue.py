"""The queue as managers watch it (definitions.QUEUE): how many cases wait for a call and how long the oldest
has waited, now and at past instants for the trend.

Past instants replay the cases' open spans (opened_at, closed_at); a customer's phone and do-not-call flags
have no history, so every instant uses them as they are now (the definition says so).
"""

import datetime as dt

from django.db.models import Count, Min, Q, QuerySet

from winback.models import WinbackCase


def callable_cases() -> QuerySet[WinbackCase]:
    """Cases that are the queue's, whatever the hour: not held out, the customer reachable by phone."""
    return (WinbackCase.objects.filter(holdout=False).exclude(customer__phone="")
            .filter(customer__do_not_call_since__isnull=True, customer__suppressed_at__isnull=True))


def open_callable_cases(*, at: dt.datetime) -> QuerySet[WinbackCase]:
    """Those open at the instant ``at``: opened before it and not closed before it (void ones included while
    they were open: they were in the queue then)."""
    return callable_cases().filter(opened_at__lt=at).filter(Q(closed_at__isnull=True) | Q(closed_at__gte=at))


def queue_figures(*, instants: list[dt.datetime]) -> list[dict]:
    """[{"at", "queue_depth", "oldest_case_age_days"}] for each instant, in one grouped query; the age is
    None when nothing waits."""
    if not instants:
        return []
    aggregates = {}
    for i, at in enumerate(instants):
        open_at = Q(opened_at__lt=at) & (Q(closed_at__isnull=True) | Q(closed_at__gte=at))
        aggregates[f"n{i}"] = Count("id", filter=open_at)
        aggregates[f"first{i}"] = Min("opened_at", filter=open_at)
    row = callable_cases().filter(opened_at__lt=max(instants)).aggregate(**aggregates)
    out = []
    for i, at in enumerate(instants):
        first = row[f"first{i}"]
        out.append({"at": at, "queue_depth": row[f"n{i}"],
                    "oldest_case_age_days": None if first is None else (at - first).total_seconds() / 86400})
    return out
