"""Agent and program figures (docs/metrics.md section 5) and reasons for leaving, for a period."""

import datetime as dt
from collections import defaultdict
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db.models import Count, DateTimeField, Exists, ExpressionWrapper, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.models import Order
from metrics.services.periods import Period, add_months, month_of
from metrics.selectors import snapshot_series
from winback.models import Disposition, DormancyPolicy, WinbackCase

CONVERSATION = ["reached_will_return", "reached_declined", "callback_requested", "complaint_escalated", "do_not_call"]
CALLBACK_ON_TIME = dt.timedelta(minutes=15)

# Each column's stable key (the CSV's header and the snapshot's) and how it is counted.
AGENT_COLUMNS = {
    "cases_worked": _("win-back and care cases with at least one call by the agent in P"),
    "contacts": _("calls the agent recorded in P (every attempt)"),
    "reach_rate": _("calls with a conversation (reached, callback asked, complaint, do-not-call) / calls"),
    "callbacks_due": _("callbacks the agent booked that fell due in P"),
    "callbacks_kept": _("of those, called back by the agent within 15 minutes of the time"),
    "offers": _("calls in P where the agent issued a coupon"),
    "redemptions": _("of those coupons, redeemed by an order"),
    "wins": _("win-back cases closed as won in P whose last call was the agent's"),
    "reactivated_revenue": _("orders of those customers from the reactivating order to the end of the attribution window"),
    "conversion": _("win-back conversion: callable cases opened in P whose last call was the agent's, closed as won / "
                    "those cases"),
}
# What the page heads each column with.
AGENT_LABELS = {
    "cases_worked": _("cases worked"), "contacts": _("calls"), "reach_rate": _("reach rate"),
    "callbacks_due": _("callbacks due"), "callbacks_kept": _("callbacks kept"), "offers": _("offers made"),
    "redemptions": _("coupons redeemed"), "wins": _("cases won"), "reactivated_revenue": _("revenue won back"),
    "conversion": _("conversion"),
}


AGENT_TABLE, REASON_COUNTS = "agent_table", "reason_counts"  # their MetricSnapshot names

# The conditions of the counts below, shared with the lists behind them (metrics/services/drilldown.py).
TALK = Q(outcome__in=CONVERSATION)
OFFER = Q(coupon__isnull=False)
REDEEMED = Q(coupon__redeemed_at__isnull=False)


def calls_in(*, period: Period) -> QuerySet[Disposition]:
    """The calls recorded in P (index: disposition_agent_time)."""
    S, E = period.bounds()
    return Disposition.objects.filter(created_at__gte=S, created_at__lt=E)


def callbacks_due(*, period: Period) -> QuerySet[Disposition]:
    """The calls that booked a callback falling due in P, each with ``kept``: the booking agent called the
    case within CALLBACK_ON_TIME of the time."""
    S, E = period.bounds()
    called_back = Disposition.objects.filter(
        case=OuterRef("case"), agent=OuterRef("agent"),
        created_at__gte=ExpressionWrapper(OuterRef("callback_at") - CALLBACK_ON_TIME, output_field=DateTimeField()),
        created_at__lte=ExpressionWrapper(OuterRef("callback_at") + CALLBACK_ON_TIME, output_field=DateTimeField()))
    return Disposition.objects.filter(callback_at__gte=S, callback_at__lt=E).annotate(kept=Exists(called_back))


def wins_credited(*, period: Period) -> QuerySet[WinbackCase]:
    """The win-back cases won in P, each with ``last_agent``: the agent of its last call before it closed
    (None: nobody called it), whom the win is credited to."""
    S, E = period.bounds()
    last_call = (Disposition.objects.filter(case=OuterRef("pk"), created_at__lte=OuterRef("closed_at"))
                 .order_by("-created_at", "-id").values("agent")[:1])
    return (WinbackCase.objects.filter(kind="winback", status="won", closed_at__gte=S, closed_at__lt=E)
            .annotate(last_agent=Subquery(last_call)))


def reasons_recorded(*, start: dt.datetime, end: dt.datetime) -> QuerySet[Disposition]:
    """The calls in [start, end) that recorded a reason for leaving."""
    return Disposition.objects.filter(created_at__gte=start, created_at__lt=end, reason__isnull=False)


# The agent table's columns that count rows of one model, and the model (the others are a rate and a sum).
AGENT_COLUMN_MODELS = {"cases_worked": WinbackCase, "contacts": Disposition, "callbacks_due": Disposition,
                       "callbacks_kept": Disposition, "offers": Disposition, "redemptions": Disposition,
                       "wins": WinbackCase}


def agent_column_rows(*, column: str, period: Period, agent_id: int | None) -> QuerySet:
    """The rows one agent's count of ``column`` counts, or with agent_id None the Team row's (its counts are
    the agents' summed, and the agents' rows are disjoint: a call has one agent, a win one last agent). The
    Team's cases worked is the one exception, not listed: a case worked by two agents counts twice in it."""
    if column == "cases_worked" and agent_id is None:
        raise ValueError(str(_("The team's cases worked count a case once per agent: no list of cases is that long.")))
    by = {} if agent_id is None else {"agent": agent_id}
    calls = calls_in(period=period).filter(**by)
    rows = {
        "cases_worked": lambda: WinbackCase.objects.filter(pk__in=calls.values("case")),
        "contacts": lambda: calls,
        "callbacks_due": lambda: callbacks_due(period=period).filter(**by),
        "callbacks_kept": lambda: callbacks_due(period=period).filter(kept=True, **by),
        "offers": lambda: calls.filter(OFFER),
        "redemptions": lambda: calls.filter(REDEEMED),
        "wins": lambda: wins_credited(period=period).filter(
            **({"last_agent__isnull": False} if agent_id is None else {"last_agent": agent_id})),
    }
    return rows[column]()


def agent_table(*, period: Period, live: bool = False) -> list[dict]:
    """One row per agent who worked in P, then a Team row (AGENT_COLUMNS say how each is counted).

    A month refreshed by metrics_refresh is read from its snapshot; other periods, or live=True, compute.
    """
    if not live and (stored := snapshot_series(metric=AGENT_TABLE, periods=[period])):
        rows = stored[period].extra["rows"]
        # A snapshot from before the conversion column lacks it: computed now until the next refresh.
        if all("conversion" in row for row in rows):
            return rows
    return agent_table_compute(period=period)


def agent_table_compute(*, period: Period, conversions: dict[int, tuple[int, int]] | None = None) -> list[dict]:
    """The agent table of P computed now (``conversions``: funnel.agent_conversions of P, when the caller has
    them, e.g. for many months from one statement)."""
    window = dt.timedelta(days=(DormancyPolicy.objects.order_by("-id").values_list("attribution_window_days", flat=True).first() or 30))
    rows: dict[int, dict] = defaultdict(lambda: {k: 0 for k in AGENT_COLUMNS})
    for r in calls_in(period=period).values("agent").annotate(
            cases=Count("case", distinct=True), contacts=Count("id"), talks=Count("id", filter=TALK),
            offers=Count("id", filter=OFFER), redeemed=Count("id", filter=REDEEMED)):
        row = rows[r["agent"]]
        row.update(cases_worked=r["cases"], contacts=r["contacts"], offers=r["offers"], redemptions=r["redeemed"])
        row["_talks"] = r["talks"]
    # Callbacks due in P and whether the booking agent called back on time (one query).
    for r in callbacks_due(period=period).values("agent", "kept").annotate(n=Count("id")).order_by():
        rows[r["agent"]]["callbacks_due"] += r["n"]
        rows[r["agent"]]["callbacks_kept"] += r["n"] if r["kept"] else 0
    # Wins: credited to the agent of the case's last call before it closed; their revenue in the window.
    window_revenue = (Order.objects.filter(
        customer=OuterRef("customer_id"), ordered_at__gte=OuterRef("closed_at"),
        ordered_at__lt=ExpressionWrapper(OuterRef("closed_at") + window, output_field=DateTimeField()))
        .order_by().values("customer").annotate(s=Sum("amount")).values("s"))
    won = wins_credited(period=period).annotate(revenue=Subquery(window_revenue)).values_list("last_agent", "revenue")
    for agent_id, revenue in won:
        if agent_id is None:
            continue
        rows[agent_id]["wins"] += 1
        rows[agent_id]["reactivated_revenue"] += float(revenue or Decimal("0"))
    # Conversion: the callable cases opened in P, each the agent's whose last call it was (metrics.services.funnel).
    from metrics.services.funnel import agent_conversions  # funnel -> program at import: import late

    if conversions is None:
        conversions = agent_conversions(period=period)
    for agent_id, (won, cases) in conversions.items():
        rows[agent_id]["_converted"], rows[agent_id]["_conversion_cases"] = won, cases
    users = {u.pk: u.get_username() for u in get_user_model().objects.filter(pk__in=rows)}
    out = []
    team_talks = sum(row.get("_talks", 0) for row in rows.values())
    team_converted = sum(row.get("_converted", 0) for row in rows.values())
    team_conversion_cases = sum(row.get("_conversion_cases", 0) for row in rows.values())
    for agent_id, row in sorted(rows.items(), key=lambda kv: users.get(kv[0], "")):
        talks = row.pop("_talks", 0)
        row["reach_rate"] = talks / row["contacts"] if row["contacts"] else None
        converted, conversion_cases = row.pop("_converted", 0), row.pop("_conversion_cases", 0)
        row["conversion"] = converted / conversion_cases if conversion_cases else None
        out.append({"agent": users.get(agent_id, f"#{agent_id}"), **row})
    if out:
        team = {k: sum(r[k] for r in out) for k in AGENT_COLUMNS if k not in ("reach_rate", "conversion")}
        team["reach_rate"] = team_talks / team["contacts"] if team["contacts"] else None
        team["conversion"] = team_converted / team_conversion_cases if team_conversion_cases else None
        out.append({"agent": "Team", **team})
    return out


def reason_counts(*, period: Period) -> dict[str, int]:
    """{reason: calls in P that recorded it}."""
    S, E = period.bounds()
    return dict(reasons_recorded(start=S, end=E).values_list("reason__name").annotate(n=Count("id")).order_by())


def reasons_table(*, period: Period, trend_months: int = 6, live: bool = False) -> dict:
    """Reasons for leaving recorded on calls in P: counts and shares, and their monthly trend.

    P and the trend months are read from their snapshots when all of them have one (live=False).
    """
    last = month_of(period.start)
    months = [month_of(add_months(last.start, -i)) for i in range(trend_months - 1, -1, -1)]
    wanted = {period, *months}
    stored = {} if live else snapshot_series(metric=REASON_COUNTS, periods=list(wanted))
    if len(stored) == len(wanted):
        counts = stored[period].extra["counts"]
        by_month = {m.label(): stored[m].extra["counts"] for m in months}
    else:
        counts = reason_counts(period=period)
        T0, T1 = months[0].bounds()[0], months[-1].bounds()[1]
        by_month = defaultdict(dict)
        for r in (reasons_recorded(start=T0, end=T1).annotate(month=TruncMonth("created_at")).values("reason__name", "month").annotate(n=Count("id")).order_by()):
            month = r["month"]
            label = f"{(timezone.localtime(month) if isinstance(month, dt.datetime) and timezone.is_aware(month) else month):%Y-%m}"
            by_month[label][r["reason__name"]] = r["n"]
    total = sum(counts.values())
    reasons = sorted({name for month in by_month.values() for name in month})
    return {
        "definition": _("reasons agents recorded on calls in P; share = count / calls with a reason in P"),
        "total": total,
        "rows": [{"reason": name, "count": n, "share": n / total if total else None}
                 for name, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))],
        "months": [m.label() for m in months],
        "trend": {reason: [by_month.get(m.label(), {}).get(reason, 0) for m in months] for reason in reasons},
    }
