"""Agent and program figures (METRICS.md section 5) and reasons for leaving, for a period."""

import datetime as dt
from collections import defaultdict
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db.models import Count, Q, Sum

from crm.models import Order
from metrics.services.periods import Period, add_months, month_of
from winback.models import Disposition, DormancyPolicy, WinbackCase

CONVERSATION = ["reached_will_return", "reached_declined", "callback_requested", "complaint_escalated", "do_not_call"]
CALLBACK_ON_TIME = dt.timedelta(minutes=15)

AGENT_COLUMNS = {
    "cases_worked": "win-back and care cases with at least one call by the agent in P",
    "contacts": "calls the agent recorded in P (every attempt)",
    "reach_rate": "calls with a conversation (reached, callback asked, complaint, do-not-call) / calls",
    "callbacks_due": "callbacks the agent booked that fell due in P",
    "callbacks_kept": "of those, called back by the agent within 15 minutes of the time",
    "offers": "calls in P where the agent issued a coupon",
    "redemptions": "of those coupons, redeemed by an order",
    "wins": "win-back cases closed as won in P whose last call was the agent's",
    "reactivated_revenue": "orders of those customers from the reactivating order to the end of the attribution window",
}


def agent_table(*, period: Period) -> list[dict]:
    S, E = period.bounds()
    window = dt.timedelta(days=(DormancyPolicy.objects.order_by("-id").values_list("attribution_window_days", flat=True).first() or 30))
    in_p = Disposition.objects.filter(created_at__gte=S, created_at__lt=E)
    rows: dict[int, dict] = defaultdict(lambda: {k: 0 for k in AGENT_COLUMNS})
    for r in in_p.values("agent").annotate(
            cases=Count("case", distinct=True), contacts=Count("id"),
            talks=Count("id", filter=Q(outcome__in=CONVERSATION)),
            offers=Count("id", filter=Q(coupon__isnull=False)),
            redeemed=Count("id", filter=Q(coupon__redeemed_at__isnull=False))):
        row = rows[r["agent"]]
        row.update(cases_worked=r["cases"], contacts=r["contacts"], offers=r["offers"], redemptions=r["redeemed"])
        row["_talks"] = r["talks"]
    # Callbacks due in P and whether the booking agent called back on time.
    for booking in Disposition.objects.filter(callback_at__gte=S, callback_at__lt=E).values("agent", "case", "callback_at"):
        row = rows[booking["agent"]]
        row["callbacks_due"] += 1
        kept = Disposition.objects.filter(
            case=booking["case"], agent=booking["agent"], created_at__gte=booking["callback_at"] - CALLBACK_ON_TIME,
            created_at__lte=booking["callback_at"] + CALLBACK_ON_TIME).exists()
        row["callbacks_kept"] += int(kept)
    won = WinbackCase.objects.filter(kind="winback", status="won", closed_at__gte=S, closed_at__lt=E)
    for case in won.values("id", "customer_id", "closed_at"):
        last = Disposition.objects.filter(case=case["id"], created_at__lte=case["closed_at"]).order_by("-created_at").values_list("agent", flat=True).first()
        if last is None:
            continue
        row = rows[last]
        row["wins"] += 1
        revenue = Order.objects.filter(customer_id=case["customer_id"], ordered_at__gte=case["closed_at"],
                                       ordered_at__lt=case["closed_at"] + window).aggregate(s=Sum("amount"))["s"]
        row["reactivated_revenue"] += float(revenue or Decimal("0"))
    users = {u.pk: u.get_username() for u in get_user_model().objects.filter(pk__in=rows)}
    out = []
    for agent_id, row in sorted(rows.items(), key=lambda kv: users.get(kv[0], "")):
        talks = row.pop("_talks", 0)
        row["reach_rate"] = talks / row["contacts"] if row["contacts"] else None
        out.append({"agent": users.get(agent_id, f"#{agent_id}"), **row})
    if out:
        team = {k: sum(r[k] for r in out if isinstance(r[k], (int, float))) for k in AGENT_COLUMNS if k != "reach_rate"}
        contacts = team["contacts"]
        talks = sum((r["reach_rate"] or 0) * r["contacts"] for r in out)
        team["reach_rate"] = talks / contacts if contacts else None
        out.append({"agent": "Team", **team})
    return out


def reasons_table(*, period: Period, trend_months: int = 6) -> dict:
    """Reasons for leaving recorded on calls in P: counts and shares, and their monthly trend."""
    S, E = period.bounds()
    counts = list(Disposition.objects.filter(created_at__gte=S, created_at__lt=E, reason__isnull=False)
                  .values("reason__name").annotate(n=Count("id")).order_by("-n", "reason__name"))
    total = sum(r["n"] for r in counts)
    last = month_of(period.start)
    months = [month_of(add_months(last.start, -i)) for i in range(trend_months - 1, -1, -1)]
    T0, T1 = months[0].bounds()[0], months[-1].bounds()[1]
    trend: dict[str, dict[str, int]] = defaultdict(dict)
    for d in Disposition.objects.filter(created_at__gte=T0, created_at__lt=T1, reason__isnull=False).values("reason__name", "created_at"):
        label = month_of(d["created_at"].astimezone(months[0].bounds()[0].tzinfo).date()).label()
        trend[d["reason__name"]][label] = trend[d["reason__name"]].get(label, 0) + 1
    return {
        "definition": "reasons agents recorded on calls in P; share = count / calls with a reason in P",
        "total": total,
        "rows": [{"reason": r["reason__name"], "count": r["n"], "share": r["n"] / total if total else None} for r in counts],
        "months": [m.label() for m in months],
        "trend": {reason: [by_month.get(m.label(), 0) for m in months] for reason, by_month in sorted(trend.items())},
    }
