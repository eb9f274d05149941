"""The KPI calculators' statements, named (metrics/services/calculators.py runs them over the temp table
m_changes: each customer's state changes with the next one's time). Tables come from the models; metrics
reads crm and winback, never writes them."""

from core.sql import render
from crm.models import Feedback, Order
from winback.models import Coupon, LifecycleEvent, WinbackCase
from winback.sql import PRECEDENCE_SQL

# Each state change with the next one's time (docs/metrics.md s.2: spells of active and inactive states).
# Index: lifecycle_event_unique serves the per-customer window.
CHANGES = render(
    "CREATE TEMP TABLE m_changes AS"
    " SELECT customer_id, kind, occurred_at AS t, kind IN ('acquired', 'reactivated') AS active_after,"
    "        lead(occurred_at) OVER w AS next_t"
    " FROM {event} WHERE kind IN ('acquired', 'reactivated', 'lapsed', 'cancelled')"
    " WINDOW w AS (PARTITION BY customer_id ORDER BY occurred_at, {precedence}, id)",
    event=LifecycleEvent, precedence=PRECEDENCE_SQL)
# Index: order_customer_time.
FIRST_ORDERS = render("CREATE TEMP TABLE m_first AS SELECT customer_id, min(ordered_at) AS first_at FROM {order}"
                      " GROUP BY customer_id", order=Order)
REACTIVATED_IN_PERIOD = ("SELECT count(DISTINCT customer_id) FROM m_changes"
                         " WHERE kind = 'reactivated' AND t >= %(s)s AND t < %(e)s")
# RP: reactivated in P out of the pool inactive at S.
REACTIVATED_FROM_POOL = (
    "SELECT count(DISTINCT r.customer_id) FROM m_changes r"
    " JOIN m_changes s ON s.customer_id = r.customer_id AND s.active_after <> true"
    "                 AND s.t < %(s)s AND (s.next_t IS NULL OR s.next_t >= %(s)s)"
    " WHERE r.kind = 'reactivated' AND r.t >= %(s)s AND r.t < %(e)s"
)
# Index: orders by time are a scan of the period (order_customer_time for the EXISTS).
PERIOD_REVENUE = render("SELECT COALESCE(sum(amount), 0), count(DISTINCT customer_id) FROM {order}"
                        " WHERE ordered_at >= %(s)s AND ordered_at < %(e)s", order=Order)
PERIOD_REPEAT_BUYERS = render(
    "SELECT count(*) FROM (SELECT customer_id, count(*) AS n FROM {order}"
    "                      WHERE ordered_at >= %(s)s AND ordered_at < %(e)s GROUP BY customer_id) b"
    " WHERE b.n > 1 OR EXISTS (SELECT 1 FROM {order} o WHERE o.customer_id = b.customer_id AND o.ordered_at < %(s)s)",
    order=Order)
PERIOD_REVENUE_BY_CUSTOMER = render(
    "SELECT customer_id, sum(CASE WHEN ordered_at < %(s)s THEN amount ELSE 0 END) AS prev,"
    "       sum(CASE WHEN ordered_at >= %(s)s THEN amount ELSE 0 END) AS cur"
    " FROM {order} WHERE ordered_at >= %(p)s AND ordered_at < %(e)s GROUP BY customer_id", order=Order)
# Index: case_status_closed and case_customer_time do not cover it: the case table is read once a period.
PROGRAM_CASES = render(
    "SELECT"
    "  sum(CASE WHEN status = 'won' AND closed_at >= %(s)s AND closed_at < %(e)s THEN 1 ELSE 0 END),"
    "  sum(CASE WHEN status IN ('won', 'returned', 'lost') AND closed_at >= %(s)s AND closed_at < %(e)s THEN 1 ELSE 0 END),"
    "  sum(CASE WHEN opened_at >= %(s)s AND opened_at < %(e)s AND status <> 'void' AND NOT holdout THEN 1 ELSE 0 END),"
    "  sum(CASE WHEN opened_at >= %(s)s AND opened_at < %(e)s AND status IN ('won', 'returned') AND NOT holdout THEN 1 ELSE 0 END),"
    "  sum(CASE WHEN opened_at >= %(s)s AND opened_at < %(e)s AND status <> 'void' AND holdout THEN 1 ELSE 0 END),"
    "  sum(CASE WHEN opened_at >= %(s)s AND opened_at < %(e)s AND status IN ('won', 'returned') AND holdout THEN 1 ELSE 0 END)"
    " FROM {case} WHERE kind = 'winback'"
    "   AND ((closed_at >= %(s)s AND closed_at < %(e)s) OR (opened_at >= %(s)s AND opened_at < %(e)s))",
    case=WinbackCase)
# The coupon and feedback conditions, shared with the lists behind the counts (metrics/services/drilldown.py).
COUPON_ISSUED_IN_P = "issued_at >= %(s)s AND issued_at < %(e)s"
COUPON_REDEEMED = "redeemed_at IS NOT NULL"
FEEDBACK_IN_P = "responded_at >= %(s)s AND responded_at < %(e)s"
NPS_PROMOTER, NPS_DETRACTOR, CSAT_SATISFIED = "score >= 9", "score <= 6", "score >= 4"
PROGRAM_COUPONS = render("SELECT count(*), sum(CASE WHEN {redeemed} THEN 1 ELSE 0 END) FROM {coupon}"
                         " WHERE {issued}", coupon=Coupon, redeemed=COUPON_REDEEMED, issued=COUPON_ISSUED_IN_P)
# Index: feedback_kind_time.
PROGRAM_FEEDBACK = render(
    "SELECT kind, count(*), sum(score),"
    "       sum(CASE WHEN {promoter} THEN 1 ELSE 0 END), sum(CASE WHEN {detractor} THEN 1 ELSE 0 END),"
    "       sum(CASE WHEN {satisfied} THEN 1 ELSE 0 END)"
    " FROM {feedback} WHERE {in_p} GROUP BY kind", feedback=Feedback, promoter=NPS_PROMOTER,
    detractor=NPS_DETRACTOR, satisfied=CSAT_SATISFIED, in_p=FEEDBACK_IN_P)
