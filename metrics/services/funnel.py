"""The win-back funnel and the win-back conversion rate (docs/metrics.md s.6), for any periods.

Choices where the definition leaves room (stated here, in the definitions' texts and in the report):

* The cases: win-back cases (not care calls) opened in P, void ones excluded (a void case was opened for a
  lapse a policy change undid; incremental_reactivation leaves them out too).
* Callable is judged as at the case's opening where the data has a history: not in the holdout, the
  customer not on do-not-call and not suppressed at opened_at (do_not_call_since / suppressed_at are
  instants). The phone has no history: the case has one when the customer has a phone now (as
  metrics/services/queue.py reads it) or when a call was made on the case (a call needs a phone). The second
  keeps a past month's funnel still when an erasure blanks the phone (tests/crm/test_privacy_erase.py).
  "As at opening" keeps a do-not-call asked for on a call from taking a called case out of the funnel.
* Each stage is the cases of the stage before that also passed this one (a funnel narrows): attempted = a
  call disposition on the case; reached = a disposition with a conversation outcome (CONVERSATION);
  offer made = a coupon issued on the case; redeemed = one of them redeemed; reactivated = closed as won,
  the program's attribution (an order within the attribution window after a contact or coupon of the case,
  winback/services/cases.py), the rule of case_win_rate.
* The conversion rate counts every callable case won, whichever stages it went through (a customer reached
  who ordered without a coupon converts), so its numerator is at least the funnel's last stage.
* The holdout beside it: holdout cases opened in P whose customer ordered again (won or returned, as
  incremental_reactivation decides) within the attribution window after the case's opening: no contact
  anchors their window.
* Per agent: a case is the agent's whose last call (by time, then id) was the agent's; the agent's rate is
  their cases won / their cases (callable cases opened in P with a call).

One statement for all periods: each period's counts are filtered aggregates over the cases opened in any of
them (Django's conditional aggregation, so PostgreSQL and SQLite alike).
"""

import datetime as dt
from typing import TYPE_CHECKING, Any

from django.db.models import (
    Count, DateTimeField, ExpressionWrapper, F, OuterRef, Q, QuerySet, Subquery,
)
from django.db.models.functions import TruncMonth
from django.utils import timezone
from django.utils.translation import gettext_lazy

from metrics.services.periods import Period, month_of
from winback.models import Coupon, Disposition, WinbackCase

if TYPE_CHECKING:
    from metrics.services.calculators import Figure


# The stages in order, each a condition on the annotated cases of funnel_cases() (cumulative: see STAGE_Q):
# the values some of the cases' columns and flags must have.
STAGES = ["opened", "callable", "attempted", "reached", "offered", "redeemed", "reactivated"]
_STEP = {
    "opened": {},
    "callable": {"is_callable": True},
    "attempted": {"attempted": True},
    "reached": {"reached": True},
    "offered": {"offered": True},
    "redeemed": {"redeemed": True},
    "reactivated": {"status": WinbackCase.Status.WON},
}
_STAGE_VALUES: dict[str, dict[str, Any]] = {}
_so_far: dict[str, Any] = {}
for _stage in STAGES:
    _so_far = {**_so_far, **_STEP[_stage]}
    _STAGE_VALUES[_stage] = _so_far
# Drill-down parts besides the stages: the conversion's numerator and the holdout's two counts.
_PART_VALUES: dict[str, dict[str, Any]] = {
    **_STAGE_VALUES, "converted": {"is_callable": True, "status": WinbackCase.Status.WON},
    "holdout": {"holdout": True}, "holdout_back": {"holdout": True, "holdout_back": True}}
# The columns and flags the parts look at (a case's "profile": funnel_counts_by_month groups the cases by it).
_PROFILE = sorted({name for values in _PART_VALUES.values() for name in values})
STAGE_Q: dict[str, Q] = {stage: Q(**values) for stage, values in _STAGE_VALUES.items()}
CONVERTED_Q = Q(**_PART_VALUES["converted"])
HOLDOUT_Q = Q(**_PART_VALUES["holdout"])
HOLDOUT_BACK_Q = Q(**_PART_VALUES["holdout_back"])
PARTS: dict[str, Q] = {part: Q(**values) for part, values in _PART_VALUES.items()}

FIGURE_NAMES = {stage: f"funnel_{stage}" for stage in STAGES}
# The stages' names inside the funnel drawing, where "Funnel:" (the figures' labels elsewhere) goes without saying.
STAGE_LABELS = {
    "opened": gettext_lazy("Cases opened"), "callable": gettext_lazy("Callable"), "attempted": gettext_lazy("Attempted"),
    # Translators: a win-back funnel stage: the customer was spoken to on a call.
    "reached": gettext_lazy("Reached"), "offered": gettext_lazy("Offer made"),
    "redeemed": gettext_lazy("Coupon redeemed"),
    # Translators: a win-back funnel stage: the customer ordered again (the case closed as won).
    "reactivated": gettext_lazy("Reactivated"),
}
CONVERSION, HOLDOUT_REACTIVATION = "winback_conversion_rate", "funnel_holdout_reactivation"


def _attribution_window() -> dt.timedelta:
    # calculators imports this module (metrics_compute calls figures_add): import it when called.
    from metrics.services.calculators import attribution_window

    return attribution_window()


def funnel_cases(*, start: dt.datetime, end: dt.datetime) -> QuerySet[WinbackCase]:
    """Win-back cases opened in [start, end), void ones excluded, each annotated with the funnel's flags
    (is_callable, attempted, reached, offered, redeemed, holdout_back)."""
    # program imports metrics.selectors, which imports calculators, which imports this module: import late.
    from metrics.services.program import CONVERSATION

    window = _attribution_window()
    # Each flag is "the case is among the cases with such a call (coupon)": one uncorrelated subquery that the
    # database hashes once, rather than a probe per case (the months of a refresh hold every case).
    called = Disposition.objects.values("case_id")
    coupons = Coupon.objects.filter(case__isnull=False)
    return (WinbackCase.objects
            .filter(kind=WinbackCase.Kind.WINBACK, opened_at__gte=start, opened_at__lt=end)
            .exclude(status=WinbackCase.Status.VOID)
            .annotate(
                is_callable=Q(holdout=False)
                & (~Q(customer__phone="") | Q(pk__in=called))
                & (Q(customer__do_not_call_since__isnull=True) | Q(customer__do_not_call_since__gt=F("opened_at")))
                & (Q(customer__suppressed_at__isnull=True) | Q(customer__suppressed_at__gt=F("opened_at"))),
                attempted=Q(pk__in=called),
                reached=Q(pk__in=Disposition.objects.filter(outcome__in=CONVERSATION).values("case_id")),
                offered=Q(pk__in=coupons.values("case_id")),
                redeemed=Q(pk__in=coupons.filter(redeemed_at__isnull=False).values("case_id")),
                holdout_back=Q(status__in=[WinbackCase.Status.WON, WinbackCase.Status.RETURNED],
                               closed_at__lt=ExpressionWrapper(F("opened_at") + window, output_field=DateTimeField())),
            ))


def funnel_part_cases(*, part: str, period: Period) -> QuerySet[WinbackCase]:
    """The cases behind one count of the funnel (a stage, "converted", "holdout" or "holdout_back")."""
    S, E = period.bounds()
    return funnel_cases(start=S, end=E).filter(PARTS[part])


def funnel_counts(*, periods: list[Period]) -> dict[Period, dict[str, int]]:
    """{period: {part: count}} for every part of PARTS, in one statement for all the periods."""
    if not periods:
        return {}
    bounds = [p.bounds() for p in periods]
    aggregates = {}
    for i, (S, E) in enumerate(bounds):
        in_p = Q(opened_at__gte=S, opened_at__lt=E)
        for part, condition in PARTS.items():
            aggregates[f"{part}__{i}"] = Count("id", filter=in_p & condition)
    row = funnel_cases(start=min(S for S, _ in bounds), end=max(E for _, E in bounds)).aggregate(**aggregates)
    return {p: {part: row[f"{part}__{i}"] or 0 for part in PARTS} for i, p in enumerate(periods)}


def funnel_counts_by_month(*, months: list[Period]) -> dict[Period, dict[str, int]]:
    """funnel_counts of calendar months, grouped by the month of opening: one statement whose filters do not
    grow with the number of months. It counts the cases per month and profile (their flags and status: a
    few dozen combinations), so that each case's flags are worked out once, not once per part that reads
    them; the parts' counts are then sums of the profiles that match (a NULL flag matches no part, as in SQL)."""
    if not months:
        return {}
    S, E = min(p.bounds()[0] for p in months), max(p.bounds()[1] for p in months)
    rows = (funnel_cases(start=S, end=E).annotate(month=TruncMonth("opened_at")).values("month", *_PROFILE)
            .annotate(n=Count("id")).order_by())
    found: dict[Period, dict[str, int]] = {}
    for row in rows:
        month = row["month"]
        if isinstance(month, dt.datetime):
            month = (timezone.localtime(month) if timezone.is_aware(month) else month).date()
        counts = found.setdefault(month_of(month), dict.fromkeys(PARTS, 0))
        for part, values in _PART_VALUES.items():
            if all(row[name] == value for name, value in values.items()):
                counts[part] += row["n"]
    return {p: found.get(p, dict.fromkeys(PARTS, 0)) for p in months}


def figures_add(*, out: "dict[Period, dict[str, Figure]]", periods: list[Period],
                by_period: dict[Period, dict[str, int]] | None = None) -> None:
    """Add each period's funnel stages, the holdout's reactivation and the conversion rate to its figures
    (``by_period``: funnel_counts of the periods, when the caller has them).

    A stage's value is its count; its numerator and denominator are the count and the stage before's, and
    ``share`` their ratio (None for the first stage or an empty stage before)."""
    from metrics.services.calculators import Figure

    for period, counts in (by_period if by_period is not None else funnel_counts(periods=periods)).items():
        figures = out[period]
        previous: int | None = None
        for stage in STAGES:
            n = counts[stage]
            share = n / previous if previous else None
            figures[FIGURE_NAMES[stage]] = Figure(FIGURE_NAMES[stage], float(n), float(n),
                                                  None if previous is None else float(previous),
                                                  {"share": share, "stage": stage})
            previous = n
        held, back = counts["holdout"], counts["holdout_back"]
        figures[HOLDOUT_REACTIVATION] = Figure(HOLDOUT_REACTIVATION, back / held if held else None,
                                               float(back), float(held))
        callable_n, converted = counts["callable"], counts["converted"]
        figures[CONVERSION] = Figure(CONVERSION, converted / callable_n if callable_n else None,
                                     float(converted), float(callable_n))


def _agent_conversion_cases(*, start: dt.datetime, end: dt.datetime) -> QuerySet[WinbackCase]:
    last_call = Disposition.objects.filter(case=OuterRef("pk")).order_by("-created_at", "-id").values("agent")[:1]
    return funnel_cases(start=start, end=end).filter(STAGE_Q["attempted"]).annotate(last_agent=Subquery(last_call))


def agent_conversions(*, period: Period) -> dict[int, tuple[int, int]]:
    """{agent id: (cases won, cases)}: the callable cases opened in P with a call, each the agent's whose last
    call it was."""
    S, E = period.bounds()
    rows = (_agent_conversion_cases(start=S, end=E).values("last_agent")
            .annotate(n=Count("id"), won=Count("id", filter=Q(status=WinbackCase.Status.WON))).order_by())
    return {r["last_agent"]: (r["won"], r["n"]) for r in rows if r["last_agent"] is not None}


def agent_conversions_by_month(*, months: list[Period]) -> dict[Period, dict[int, tuple[int, int]]]:
    """agent_conversions of calendar months in one statement, grouped by the month of opening."""
    out: dict[Period, dict[int, tuple[int, int]]] = {p: {} for p in months}
    if not months:
        return out
    S, E = min(p.bounds()[0] for p in months), max(p.bounds()[1] for p in months)
    rows = (_agent_conversion_cases(start=S, end=E).annotate(month=TruncMonth("opened_at")).values("month", "last_agent")
            .annotate(n=Count("id"), won=Count("id", filter=Q(status=WinbackCase.Status.WON))).order_by())
    for r in rows:
        month = r["month"]
        if isinstance(month, dt.datetime):
            month = (timezone.localtime(month) if timezone.is_aware(month) else month).date()
        if r["last_agent"] is not None and month_of(month) in out:
            out[month_of(month)][r["last_agent"]] = (r["won"], r["n"])
    return out


def funnel_section(*, figures: "dict[str, Figure]", period: Period) -> dict[str, Any]:
    """The KPI page's funnel: per stage its count, share of the stage before, drop from it, bar width (a
    whole percent of the first stage, a class of static/metrics/kpis.css: no inline styles under the CSP)
    and the admin list of its cases; the holdout's reactivation and the conversion beside it."""
    from core.drilldown import drilldown_url
    from metrics.services.charts import number_text
    from metrics.services.definitions import ALL

    def percent(x: float | None) -> str | None:
        return None if x is None else number_text(x * 100, decimals=1)

    def url(part: str) -> str:
        return drilldown_url(key=f"funnel:{part}", start=period.start, end=period.end)

    top = figures[FIGURE_NAMES["opened"]].value or 0
    stages = []
    previous: int | None = None
    for stage in STAGES:
        name = FIGURE_NAMES[stage]
        f = figures[name]
        n = int(f.value or 0)
        share = f.extra.get("share")
        stages.append({
            "stage": stage, "label": STAGE_LABELS[stage], "formula": ALL[name].formula, "count": n,
            "count_text": number_text(n), "share_text": percent(share),
            "drop": None if previous is None else previous - n,
            "drop_text": None if previous is None else number_text(previous - n),
            "width": round(100 * n / top) if top else 0, "url": url(stage),
        })
        previous = n
    held, conversion = figures[HOLDOUT_REACTIVATION], figures[CONVERSION]
    return {
        "stages": stages,
        "holdout": {"cases": int(held.denominator or 0), "back": int(held.numerator or 0),
                    "cases_text": number_text(int(held.denominator or 0)), "back_text": number_text(int(held.numerator or 0)),
                    "share_text": percent(held.value), "formula": ALL[HOLDOUT_REACTIVATION].formula,
                    "cases_url": url("holdout"), "back_url": url("holdout_back")},
        "conversion": {"rate_text": percent(conversion.value), "converted": int(conversion.numerator or 0),
                       "callable": int(conversion.denominator or 0),
                       "converted_text": number_text(int(conversion.numerator or 0)),
                       "callable_text": number_text(int(conversion.denominator or 0)),
                       "formula": ALL[CONVERSION].formula, "converted_url": url("converted"), "callable_url": url("callable")},
    }
