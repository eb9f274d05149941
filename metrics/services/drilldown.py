"""The customers and cases behind each count the KPI pages show (core.drilldown's registry), and which count
each part of a figure's inputs is.

Each resolver runs the count's own statement with the ids selected instead of counted (the lifecycle counts
over the m_changes table, docs/metrics.md s.2; the program counts with the conditions of metrics.sql's
PROGRAM_CASES), so an admin list reached from a count is as long as the count, when the count was computed
from the same data (a snapshot is as of its computed_at; the list is as of now). The agents and reasons tables'
counts are families keyed by the row (``agent_wins:<user id>`` or ``agent_wins:team``, ``reason:<id>``) and
filter with program.py's own querysets; coupons and feedback responses run metrics.sql's conditions; the
predicted-value pools, predictions.selectors' pools. What is not a count of rows (a rate, revenue, the CES
score sum, the team's cases worked, which count a case once per agent) has no list.
"""

import datetime as dt
import re
from collections.abc import Callable

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from core.drilldown import drilldown_register
from core.sql import render
from crm.models import Customer, Feedback, Order
from metrics.services.calculators import Figure, state_changes, won_back_cases
from metrics.services.charts import number_text
from metrics.services.definitions import COUNTS
from metrics.services.funnel import PARTS, funnel_part_cases
from metrics.services.periods import Period
from metrics.services.predictions import POOLS, predicted_pool_customers
from metrics.services.program import AGENT_COLUMN_MODELS, agent_column_rows, reasons_recorded
from metrics.services.queue import open_callable_cases
from metrics.sql import (
    COUPON_ISSUED_IN_P, COUPON_REDEEMED, CSAT_SATISFIED, FEEDBACK_IN_P, NPS_DETRACTOR, NPS_PROMOTER,
)
from winback.models import Coupon, Disposition, LeaveReason, WinbackCase

# Over m_changes (metrics.sql CHANGES): the conditions of calculators._lifecycle_counts, spelt as instants.
_ACTIVE_AT = "active_after = true AND t < %(x)s AND (next_t IS NULL OR next_t >= %(x)s)"
LIFECYCLE_IDS = {
    "CS": "SELECT DISTINCT customer_id FROM m_changes WHERE " + _ACTIVE_AT.replace("%(x)s", "%(s)s"),
    "CE": "SELECT DISTINCT customer_id FROM m_changes WHERE " + _ACTIVE_AT.replace("%(x)s", "%(e)s"),
    "LP": ("SELECT DISTINCT customer_id FROM m_changes WHERE active_after <> true AND t < %(s)s"
           " AND (next_t IS NULL OR next_t >= %(s)s)"),
    "L0": ("SELECT DISTINCT customer_id FROM m_changes WHERE active_after = true AND t < %(s)s"
           " AND next_t >= %(s)s AND next_t < %(e)s"),
    "CN": "SELECT DISTINCT customer_id FROM m_changes WHERE kind = 'acquired' AND t >= %(s)s AND t < %(e)s",
    "Ln": ("SELECT DISTINCT customer_id FROM m_changes WHERE kind = 'acquired' AND t >= %(s)s AND t < %(e)s"
           " AND next_t IS NOT NULL AND next_t < %(e)s"),
    "R": "SELECT DISTINCT customer_id FROM m_changes WHERE kind = 'reactivated' AND t >= %(s)s AND t < %(e)s",
    # metrics.sql REACTIVATED_FROM_POOL, the ids instead of their count.
    "RP": ("SELECT DISTINCT r.customer_id FROM m_changes r"
           " JOIN m_changes s ON s.customer_id = r.customer_id AND s.active_after <> true"
           "                 AND s.t < %(s)s AND (s.next_t IS NULL OR s.next_t >= %(s)s)"
           " WHERE r.kind = 'reactivated' AND r.t >= %(s)s AND r.t < %(e)s"),
}


def lifecycle_ids(*, part: str, period: Period) -> list[int]:
    """The customers of one lifecycle count of docs/metrics.md s.2 (CS, CN, L0, Ln, R, LP, RP, CE) or of the
    churn incl. new numerator ("lost": L0 and Ln, two disjoint sets)."""
    S, E = period.bounds()
    params = {"s": connection.ops.adapt_datetimefield_value(S), "e": connection.ops.adapt_datetimefield_value(E)}
    with state_changes() as cur:
        ids: set[int] = set()
        for name in (("L0", "Ln") if part == "lost" else (part,)):
            cur.execute(LIFECYCLE_IDS[name], params)
            ids.update(row[0] for row in cur.fetchall())
    return sorted(ids)


def _winback_cases_in(period: Period, field: str) -> QuerySet[WinbackCase]:
    S, E = period.bounds()
    return WinbackCase.objects.filter(kind=WinbackCase.Kind.WINBACK, **{f"{field}__gte": S, f"{field}__lt": E})


_BACK = Q(status__in=[WinbackCase.Status.WON, WinbackCase.Status.RETURNED])


def program_cases(*, part: str, period: Period) -> QuerySet[WinbackCase]:
    """The cases of the win rate's and the incremental reactivation's inputs (metrics.sql PROGRAM_CASES)."""
    S, E = period.bounds()
    opened = _winback_cases_in(period, "opened_at").exclude(status=WinbackCase.Status.VOID)
    return {
        "won": won_back_cases(start=S, end=E),
        "closed": _winback_cases_in(period, "closed_at").filter(
            status__in=[WinbackCase.Status.WON, WinbackCase.Status.RETURNED, WinbackCase.Status.LOST]),
        "contacted": opened.filter(holdout=False),
        "contacted_back": opened.filter(_BACK, holdout=False),
        "holdout": opened.filter(holdout=True),
        "holdout_back": opened.filter(_BACK, holdout=True),
    }[part]


def buyers(*, period: Period, repeat: bool) -> QuerySet[Customer]:
    """Customers who ordered in P (metrics.sql PERIOD_REVENUE's count) and, with ``repeat``, of those the ones
    with more than one order in P or one before it (PERIOD_REPEAT_BUYERS)."""
    S, E = period.bounds()
    in_p = Order.objects.filter(customer=OuterRef("pk"), ordered_at__gte=S, ordered_at__lt=E)
    out = Customer.objects.filter(Exists(in_p))
    if repeat:
        orders_in_p = in_p.order_by().values("customer").annotate(n=Count("pk")).values("n")
        before = Order.objects.filter(customer=OuterRef("pk"), ordered_at__lt=S)
        out = out.annotate(orders_in_p=Subquery(orders_in_p)).filter(Q(orders_in_p__gt=1) | Exists(before))
    return out


def cohort_customers(*, period: Period) -> QuerySet[Customer]:
    """A cohort of the retention matrix: the customers acquired in the month (cohorts.cohort_sizes)."""
    S, E = period.bounds()
    return Customer.objects.filter(acquired_at__gte=S, acquired_at__lt=E)


# The coupons and the feedback responses behind metrics.sql PROGRAM_COUPONS and PROGRAM_FEEDBACK, with their
# conditions: {"coupons:issued": (statement, its parameters besides the period), ...}.
_ALL = "1 = 1"
PROGRAM_ROW_IDS: dict[str, tuple[str, dict[str, str]]] = {
    **{f"coupons:{part}": (render("SELECT id FROM {coupon} WHERE {issued} AND {condition}", coupon=Coupon,
                                  issued=COUPON_ISSUED_IN_P, condition=condition), {})
       for part, condition in (("issued", _ALL), ("redeemed", COUPON_REDEEMED))},
    **{f"feedback:{kind}{suffix}": (render("SELECT id FROM {feedback} WHERE {in_p} AND kind = %(kind)s AND {grade}",
                                           feedback=Feedback, in_p=FEEDBACK_IN_P, grade=grade), {"kind": kind})
       for kind, suffix, grade in (("nps", "", _ALL), ("nps", "_promoters", NPS_PROMOTER),
                                   ("nps", "_detractors", NPS_DETRACTOR), ("csat", "", _ALL),
                                   ("csat", "_satisfied", CSAT_SATISFIED), ("ces", "", _ALL))},
}


def program_row_ids(*, key: str, period: Period) -> list[int]:
    """The coupons or feedback responses of one count of PROGRAM_ROW_IDS."""
    statement, params = PROGRAM_ROW_IDS[key]
    S, E = period.bounds()
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cur:
        cur.execute(statement, {"s": adapt(S), "e": adapt(E), **params})
        return [row[0] for row in cur.fetchall()]


def agent_parameter(text: str, *, team: bool = True) -> tuple[int | None, str]:
    """An agent table row's parameter: a user's id, or "team" for the Team row."""
    if text == "team":
        if not team:
            raise ValueError(_("The team's cases worked add up each agent's cases (a case two agents worked counts"
                               " twice): no list is that long; open an agent's."))
        return None, _("Team")
    if not text.isdigit() or len(text) > 18:
        raise ValueError(_("'%(text)s' is not an agent: use an agent's id or 'team'.") % {"text": text})
    user = get_user_model().objects.filter(pk=int(text)).first()
    if user is None:
        raise ValueError(_("There is no user with id %(id)s.") % {"id": text})
    return user.pk, user.get_username()


def reason_parameter(text: str) -> tuple[int, str]:
    """A reasons table row's parameter: a reason for leaving's id."""
    if not text.isdigit() or len(text) > 18:
        raise ValueError(_("'%(text)s' is not a reason for leaving: use its id.") % {"text": text})
    reason = LeaveReason.objects.filter(pk=int(text)).first()
    if reason is None:
        raise ValueError(_("There is no reason for leaving with id %(id)s.") % {"id": text})
    return reason.pk, reason.name


def _period(start: dt.date | None, end: dt.date | None) -> Period:
    return Period(start, end)


def drilldowns_register() -> None:
    """Register every count's resolver with core.drilldown (metrics.apps.MetricsConfig.ready)."""
    labels = {**{k: d.label for k, d in COUNTS.items()},
              "lost": gettext_lazy("Lost: lapsed from the base and new and lapsed (L0 + Ln)")}
    for part in (*LIFECYCLE_IDS, "lost"):
        drilldown_register(key=part, model=Customer, label=labels[part],
                           resolve=_lifecycle_resolver(part))
    case_labels = {
        "won": gettext_lazy("Win-back cases won"), "closed": gettext_lazy("Win-back cases closed"),
        "contacted": gettext_lazy("Cases opened, contacted group"),
        "contacted_back": gettext_lazy("Cases opened, contacted group, customer back"),
        "holdout": gettext_lazy("Cases opened, holdout"),
        "holdout_back": gettext_lazy("Cases opened, holdout, customer back"),
    }
    for part, label in case_labels.items():
        drilldown_register(key=f"cases:{part}", model=WinbackCase, label=label, resolve=_program_resolver(part))
    drilldown_register(key="buyers", model=Customer, label=gettext_lazy("Customers who ordered"),
                       resolve=lambda s, e: buyers(period=_period(s, e), repeat=False))
    drilldown_register(key="buyers:repeat", model=Customer, label=gettext_lazy("Repeat buyers"),
                       resolve=lambda s, e: buyers(period=_period(s, e), repeat=True))
    drilldown_register(key="cohort", model=Customer, label=gettext_lazy("Cohort: acquired in the month"),
                       resolve=lambda s, e: cohort_customers(period=_period(s, e)))
    drilldown_register(key="queue", model=WinbackCase, label=gettext_lazy("Callable cases now"), needs_period=False,
                       resolve=lambda s, e: open_callable_cases(at=timezone.now()))
    _tables_register()
    _funnel_register()


def _funnel_register() -> None:
    """The win-back funnel's counts: the cases at each stage (metrics.services.funnel, the same conditions)."""
    labels = {
        "opened": gettext_lazy("Funnel: win-back cases opened"), "callable": gettext_lazy("Funnel: callable cases"),
        "attempted": gettext_lazy("Funnel: cases called at least once"),
        "reached": gettext_lazy("Funnel: cases with a conversation"),
        "offered": gettext_lazy("Funnel: cases with a coupon issued"),
        "redeemed": gettext_lazy("Funnel: cases with a coupon redeemed"),
        "reactivated": gettext_lazy("Funnel: cases reactivated (won) after a coupon redeemed"),
        "converted": gettext_lazy("Callable cases won"),
        "holdout": gettext_lazy("Funnel: holdout cases opened"),
        "holdout_back": gettext_lazy("Funnel: holdout cases back within the attribution window"),
    }
    for part in PARTS:
        drilldown_register(key=f"funnel:{part}", model=WinbackCase, label=labels[part], resolve=_funnel_resolver(part))


def _funnel_resolver(part: str) -> Callable:
    return lambda s, e: funnel_part_cases(part=part, period=_period(s, e))


def _tables_register() -> None:
    """The agents table's and the reasons table's counts (families: one count per agent or reason), the
    coupons, the feedback responses and the predicted-value pools."""
    agent_labels = {
        "cases_worked": gettext_lazy("Cases worked by %(parameter)s"), "contacts": gettext_lazy("Calls by %(parameter)s"),
        "callbacks_due": gettext_lazy("Callbacks due, booked by %(parameter)s"),
        "callbacks_kept": gettext_lazy("Callbacks kept by %(parameter)s"),
        "offers": gettext_lazy("Calls with a coupon issued, by %(parameter)s"),
        "redemptions": gettext_lazy("Calls with a coupon since redeemed, by %(parameter)s"),
        "wins": gettext_lazy("Win-back cases won, credited to %(parameter)s"),
    }
    for column, model in AGENT_COLUMN_MODELS.items():
        drilldown_register(key=f"agent_{column}", model=model, label=agent_labels[column],
                           resolve=_agent_resolver(column),
                           parse=lambda text, team=(column != "cases_worked"): agent_parameter(text, team=team))
    drilldown_register(key="reason", model=Disposition, label=gettext_lazy("Calls that recorded the reason %(parameter)s"),
                       resolve=lambda s, e, reason_id: reason_calls(reason_id=reason_id, period=_period(s, e)),
                       parse=reason_parameter)
    program_labels = {
        "coupons:issued": gettext_lazy("Coupons issued"), "coupons:redeemed": gettext_lazy("Coupons issued, redeemed"),
        "feedback:nps": gettext_lazy("NPS responses"), "feedback:nps_promoters": gettext_lazy("NPS promoters (9-10)"),
        "feedback:nps_detractors": gettext_lazy("NPS detractors (0-6)"), "feedback:csat": gettext_lazy("CSAT responses"),
        "feedback:csat_satisfied": gettext_lazy("CSAT responses scoring 4 or 5"),
        "feedback:ces": gettext_lazy("CES responses"),
    }
    for key, label in program_labels.items():
        drilldown_register(key=key, model=Coupon if key.startswith("coupons:") else Feedback, label=label,
                           resolve=_program_rows_resolver(key))
    pool_labels = {"lapsed": gettext_lazy("Lapsed pool with a predicted CLV"),
                   "won_back": gettext_lazy("Won back in the period, with a predicted CLV"),
                   "base": gettext_lazy("Customers with a predicted CLV")}
    for pool in POOLS:
        drilldown_register(key=f"predicted:{pool}", model=Customer, label=pool_labels[pool],
                           needs_period=pool == "won_back", resolve=_pool_resolver(pool))


def reason_calls(*, reason_id: int, period: Period) -> QuerySet[Disposition]:
    """The calls of one reasons table count: in P, recording the reason (program.reason_counts)."""
    S, E = period.bounds()
    return reasons_recorded(start=S, end=E).filter(reason_id=reason_id)


def _agent_resolver(column: str) -> Callable:
    return lambda s, e, agent_id: agent_column_rows(column=column, period=_period(s, e), agent_id=agent_id)


def _program_rows_resolver(key: str) -> Callable:
    return lambda s, e: program_row_ids(key=key, period=_period(s, e))


def _pool_resolver(pool: str) -> Callable:
    return lambda s, e: predicted_pool_customers(pool=pool, period=_period(s, e) if s and e else None)


def _lifecycle_resolver(part: str) -> Callable:
    return lambda s, e: lifecycle_ids(part=part, period=_period(s, e))


def _program_resolver(part: str) -> Callable:
    return lambda s, e: program_cases(part=part, period=_period(s, e))


def _n(x: float | None) -> int:
    return int(round(x or 0))


def input_parts(figure: Figure) -> list[dict] | None:
    """The figure's inputs as text segments, the counts among them with their drill-down key:
    [{"text": "12", "key": "L0"}, {"text": " of "}, {"text": "240", "key": "CS"}]; None when the figure has
    no counts to list (its plain ``inputs()`` text stands). Each figure's inputs are a template with
    {placeholders}, translated as a whole, and per placeholder its number and drill-down key (None: a number
    without a list, such as CE - CN)."""
    f, x = figure, figure.extra
    of = _("{part} of {whole}")
    spec: dict[str, tuple[str, dict[str, tuple[int, str | None]]]] = {
        "churn_rate": (of, {"part": (_n(f.numerator), "L0"), "whole": (_n(f.denominator), "CS")}),
        "churn_rate_incl_new": (of, {"part": (_n(f.numerator), "lost"), "whole": (_n(f.denominator), "CS")}),
        "retention_rate": (of, {"part": (_n(f.numerator), None), "whole": (_n(f.denominator), "CS")}),
        "growth_rate": (of, {"part": (_n(f.numerator), None), "whole": (_n(f.denominator), "CS")}),
        "reactivation_rate": (of, {"part": (_n(f.numerator), "RP"), "whole": (_n(f.denominator), "LP")}),
        "case_win_rate": (of, {"part": (_n(f.numerator), "cases:won"), "whole": (_n(f.denominator), "cases:closed")}),
        "repeat_purchase_rate": (of, {"part": (_n(f.numerator), "buyers:repeat"),
                                      "whole": (_n(f.denominator), "buyers")}),
        "new_customers": (_("{n} acquired"), {"n": (_n(f.value), "CN")}),
        "csat": (of, {"part": (_n(f.numerator), "feedback:csat_satisfied"), "whole": (_n(f.denominator), "feedback:csat")}),
        # The numerator is a sum of scores, not a count of responses: it has no list.
        "ces": (of, {"part": (_n(f.numerator), None), "whole": (_n(f.denominator), "feedback:ces")}),
        "winback_conversion_rate": (of, {"part": (_n(f.numerator), "funnel:converted"),
                                         "whole": (_n(f.denominator), "funnel:callable")}),
        "funnel_holdout_reactivation": (of, {"part": (_n(f.numerator), "funnel:holdout_back"),
                                             "whole": (_n(f.denominator), "funnel:holdout")}),
        "coupon_redemption_rate": (of, {"part": (_n(f.numerator), "coupons:redeemed"),
                                        "whole": (_n(f.denominator), "coupons:issued")}),
        "loyalty_share": (of, {"part": (_n(f.numerator), None), "whole": (_n(f.denominator), "CE")}),
    }
    if f.name == "nps" and x.get("responses"):
        spec[f.name] = (ngettext("{promoters} promoters, {detractors} detractors of {responses} response",
                                 "{promoters} promoters, {detractors} detractors of {responses} responses",
                                 x["responses"]), {
            "promoters": (x["promoters"], "feedback:nps_promoters"),
            "detractors": (x["detractors"], "feedback:nps_detractors"), "responses": (x["responses"], "feedback:nps")})
    if f.name == "incremental_reactivation" and "contacted" in x:
        c, h = x["contacted"], x["holdout"]
        spec[f.name] = (_("contacted {cb} of {c}, holdout {hb} of {h}"), {
            "cb": (c["reactivated"], "cases:contacted_back"), "c": (c["cases"], "cases:contacted"),
            "hb": (h["reactivated"], "cases:holdout_back"), "h": (h["cases"], "cases:holdout")})
    if f.name == "revenue_won_back" and "cases" in x:
        spec[f.name] = (ngettext("{n} case won", "{n} cases won", x["cases"]), {"n": (x["cases"], "cases:won")})
    if f.name not in spec:
        return None
    template, numbers = spec[f.name]
    return segments(template, numbers)


def segments(template: str, numbers: dict[str, tuple[int, str | None]]) -> list[dict]:
    out = []
    for piece in re.split(r"(\{\w+\})", template):
        name = piece[1:-1] if piece.startswith("{") and piece.endswith("}") else None
        if name in numbers:
            value, key = numbers[name]
            out.append({"text": number_text(value), "key": key, "value": value})
        elif piece:
            out.append({"text": piece})
    return out
