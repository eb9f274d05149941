"""docs/metrics.md section 1 for one customer, in Python: the engine's path on databases without the SQL one
(SQLite). PostgreSQL computes the same events with window functions (lifecycle_sql.py)."""

import datetime as dt
import zoneinfo
from collections.abc import Sequence

from winback.services.policy import PolicyParams

US = dt.timedelta(microseconds=1)

Event = tuple[str, dt.datetime]


def lifecycle_compute(
    *,
    orders: Sequence[dt.datetime],
    acquired_at: dt.datetime | None,
    cancellations: Sequence[dt.datetime],
    policy: PolicyParams,
    now: dt.datetime,
) -> tuple[list[Event], dt.datetime | None]:
    """The customer's events up to ``now`` and the next instant one may fall due by itself.

    ``orders`` and ``cancellations`` are sorted. Each order i opens a segment [t_i, t_{i+1}); in it the
    customer may turn at risk, lapse (t_i + threshold_i, if no order comes first; an order exactly at the
    crossing is in time) or cancel (the first cancellation of the segment); the next order then reactivates
    them. A cancellation between the acquisition and the first order forms a segment of its own.
    """
    if not orders and acquired_at is None:
        return [], None
    start = min(filter(None, (acquired_at, orders[0] if orders else None)))
    events: list[Event] = [("acquired", start)]
    due: list[dt.datetime] = []

    def first_cancellation(lo: dt.datetime, hi: dt.datetime | None) -> dt.datetime | None:
        for c in cancellations:
            if c >= lo and (hi is None or c < hi):
                return c
        return None

    def at(kind: str, when: dt.datetime) -> bool:
        if when <= now:
            events.append((kind, when))
            return True
        due.append(when)
        return False

    first_order = orders[0] if orders else None
    if first_order is None or start < first_order:
        c = first_cancellation(start, first_order)
        if c is not None and at("cancelled", c) and first_order is not None:
            events.append(("reactivated", first_order))

    t1 = first_order
    zone = zoneinfo.ZoneInfo(policy.tz)
    days: set[dt.date] = set()
    for i, t in enumerate(orders, start=1):
        nxt = orders[i] if i < len(orders) else None
        if policy.model_rule:
            days.add(t.astimezone(zone).date())
        lapse_us, risk_us = policy.thresholds(i=i, span_us=(t - t1) // US, x=len(days) - 1)
        lapse_at, risk_at = t + lapse_us * US, t + risk_us * US
        c = first_cancellation(t, nxt)
        lost = False
        if risk_us < lapse_us and (nxt is None or risk_at < nxt) and (c is None or risk_at < c):
            at("at_risk", risk_at)
        if (nxt is None or lapse_at < nxt) and (c is None or lapse_at < c):
            lost = at("lapsed", lapse_at)
        if c is not None:
            lost = at("cancelled", c) or lost
        if nxt is not None and lost:
            events.append(("reactivated", nxt))
    return events, min(due) if due else None


PRECEDENCE = {"acquired": 0, "reactivated": 1, "at_risk": 2, "lapsed": 3, "cancelled": 4}
STATUS_OF = {"acquired": "active", "reactivated": "active", "at_risk": "at_risk", "lapsed": "lapsed", "cancelled": "cancelled"}


def status_of(events: Sequence[Event], *, last_order_at: dt.datetime | None = None) -> str:
    """The status follows the latest event; at the same instant the later stage wins. At risk ends with the
    next order (the rule restarts from it), which is no event of its own."""
    if not events:
        return "prospect"
    kind, when = max(events, key=lambda e: (e[1], PRECEDENCE[e[0]]))
    if kind == "at_risk" and last_order_at is not None and last_order_at > when:
        return "active"
    return STATUS_OF[kind]

