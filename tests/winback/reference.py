"""A small, independent reference of docs/metrics.md section 1 (exact fractions of days, a plain walk along the
timeline), against which the engine is checked. The choices docs/metrics.md leaves open are the engine's
documented ones: thresholds are rounded down to the microsecond; before min_orders the at-risk threshold
is default_days * at_risk_k / k; at risk only when it comes before the lapse; an order exactly at a crossing
is in time; the first cancellation between two orders counts; at the same instant the later stage wins."""

import datetime as dt
import math
from fractions import Fraction

DAY_US = 86_400_000_000


def _floor_us(days: Fraction) -> dt.timedelta:
    return dt.timedelta(microseconds=int(days * DAY_US // 1))


def model_threshold_us(policy: dict, span_us: int, x: int) -> int:
    """The model rule's closed form in floats, the operations in the engine's order (an exact reference
    cannot be held to the microsecond against floats); tests/winback/test_lapse_rules.py checks the formula
    itself against P(alive) computed independently."""
    r, alpha, a, b, p = (policy[key] for key in ("r", "alpha", "a", "b", "p_alive_min"))
    tx_weeks = span_us / (7 * DAY_US)
    root = ((1.0 / p - 1.0) * (b + x - 1) / a) ** (1.0 / (r + x))
    weeks = (alpha + tx_weeks) * root - alpha - tx_weeks
    return int(math.floor(min(max(weeks * (7 * DAY_US), policy["min_days"] * DAY_US), policy["max_days"] * DAY_US)))


def thresholds(policy: dict, orders: list[dt.datetime], i: int) -> tuple[dt.timedelta, dt.timedelta]:
    k, ark = Fraction(str(policy["k"])), Fraction(str(policy["at_risk_k"]))
    rule = policy.get("rule", "rhythm")
    if rule == "model":
        x = len({t.astimezone(dt.timezone.utc).date() for t in orders[:i]}) - 1  # the tests' business zone is UTC
        lapse_us = model_threshold_us(policy, (orders[i - 1] - orders[0]) // dt.timedelta(microseconds=1), x) if x else policy["default_days"] * DAY_US
        return dt.timedelta(microseconds=lapse_us), _floor_us(Fraction(lapse_us, DAY_US) * ark / k)
    if rule == "window":
        return _floor_us(Fraction(policy["default_days"])), _floor_us(Fraction(policy["default_days"]) * ark / k)
    if i >= policy["min_orders"]:
        gap_days = Fraction((orders[i - 1] - orders[0]) // dt.timedelta(microseconds=1), DAY_US) / (i - 1)
        clamp = lambda x: min(max(x, Fraction(policy["min_days"])), Fraction(policy["max_days"]))  # noqa: E731
        return _floor_us(clamp(k * gap_days)), _floor_us(clamp(ark * gap_days))
    return _floor_us(Fraction(policy["default_days"])), _floor_us(Fraction(policy["default_days"]) * ark / k)


def reference_events(*, policy: dict, orders: list[dt.datetime], acquired_at: dt.datetime | None,
                     cancellations: list[dt.datetime], now: dt.datetime) -> set[tuple[str, dt.datetime]]:
    orders = sorted(orders)
    starts = [x for x in (acquired_at, orders[0] if orders else None) if x is not None]
    if not starts:
        return set()
    start = min(starts)
    events = {("acquired", start)}
    # The timeline as segments: (segment start, next order or None, index of the order opening it or 0).
    segments = []
    if not orders or start < orders[0]:
        segments.append((start, orders[0] if orders else None, 0))
    for i, t in enumerate(orders, start=1):
        segments.append((t, orders[i] if i < len(orders) else None, i))
    for seg_start, nxt, i in segments:
        in_segment = sorted(c for c in cancellations if c >= seg_start and (nxt is None or c < nxt))
        cancel = in_segment[0] if in_segment else None
        lost = False
        if i >= 1:
            lapse_thr, risk_thr = thresholds(policy, orders, i)
            lapse_at, risk_at = seg_start + lapse_thr, seg_start + risk_thr
            before_cut = lambda x: (nxt is None or x < nxt) and (cancel is None or x < cancel)  # noqa: E731
            if risk_thr < lapse_thr and before_cut(risk_at) and risk_at <= now:
                events.add(("at_risk", risk_at))
            if before_cut(lapse_at) and lapse_at <= now:
                events.add(("lapsed", lapse_at))
                lost = True
        if cancel is not None and cancel <= now:
            events.add(("cancelled", cancel))
            lost = True
        if lost and nxt is not None:
            events.add(("reactivated", nxt))
    return events
