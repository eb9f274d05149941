"""The KPI calculators' statements, named (metrics/services/calculators.py runs them over the temp table
m_changes: each customer's state changes with the next one's time). Tables come from the models; metrics
reads crm and winback, never writes them."""

from core.sql import render
from crm.models import Customer, Feedback, Order
from winback.models import Coupon, LifecycleEvent, WinbackCase
from winback.sql import PRECEDENCE_SQL

# Each state change with the next one's time (docs/metrics.md s.2: spells of active and inactive states).
# Index: lifecycle_event_unique serves the per-customer window (and a part's range of customers).
_CHANGES = ("CREATE TEMP TABLE m_changes AS"
            " SELECT customer_id, kind, occurred_at AS t, kind IN ('acquired', 'reactivated') AS active_after,"
            "        lead(occurred_at) OVER w AS next_t"
            " FROM {event} WHERE kind IN ('acquired', 'reactivated', 'lapsed', 'cancelled'){customers}"
            " WINDOW w AS (PARTITION BY customer_id ORDER BY occurred_at, {precedence}, id)")
CHANGES = render(_CHANGES, event=LifecycleEvent, precedence=PRECEDENCE_SQL, customers="")
CHANGES_OF_CUSTOMERS = render(_CHANGES, event=LifecycleEvent, precedence=PRECEDENCE_SQL,
                              customers=" AND customer_id >= %(lo)s AND customer_id < %(hi)s")
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

# --- Many months at once, a part of the customers at a time (metrics/services/monthly.py) -----------------
# Templates: {month} and the like are the month index (year * 12 + month in the business time zone) of a
# column, {customers} a part's range of customers or nothing; rendered when run (the month's SQL is the
# dialect's).

# Each customer's orders per month (the one pass over the orders), with what the month figures need from the
# customer's other months, by window functions over their months (each computed once, in the inner select):
# the month they last ordered in before (NULL: none, a first month), the revenue of the month before (0 when
# they did not order then), the next month they ordered in, the orders and revenue of the 12 months before, and
# the month of the third most recent order up to this month (months with orders hold at least one each, so it
# is this month's, the previous order month's or the one before). Money in whole cents (amounts have two
# decimals): integer sums are exact and far cheaper than numeric ones.
# Index: order_customer_time, which includes the amount (an index-only scan of a part's range of customers).
CUSTOMER_MONTHS = (
    "CREATE TEMP TABLE m_cm AS"
    " SELECT customer_id, month, cents, n, prev_month,"
    "        CASE WHEN prev_month = month - 1 THEN prev_month_cents ELSE 0 END AS prev_cents, next_month,"
    "        year_cents, year_n,"
    "        CASE WHEN n >= 3 THEN month WHEN n + prev_n >= 3 THEN prev_month ELSE prev_month_2 END AS third_month"
    " FROM (SELECT customer_id, month, cents, n, lag(month) OVER o AS prev_month, lag(cents) OVER o AS prev_month_cents,"
    "              lag(n) OVER o AS prev_n, lag(month, 2) OVER o AS prev_month_2, lead(month) OVER o AS next_month,"
    "              CAST(COALESCE(sum(cents) OVER y, 0) AS bigint) AS year_cents, COALESCE(sum(n) OVER y, 0) AS year_n"
    "       FROM (SELECT customer_id, {month} AS month, CAST(round(sum(amount) * 100) AS bigint) AS cents,"
    "                    CAST(count(*) AS integer) AS n"
    "             FROM {order} WHERE ordered_at < %(until)s{customers} GROUP BY 1, 2) r"
    "       WINDOW o AS (PARTITION BY customer_id ORDER BY month),"
    "              y AS (PARTITION BY customer_id ORDER BY month RANGE BETWEEN 12 PRECEDING AND 1 PRECEDING)) w")
# The state changes with the months of their start and of the next change (NULL: none yet). A spell covers
# the first instant of month m (S) when mt < m <= mn, and the end of month m (E) when mt <= m < mn.
SPELLS = ("CREATE TEMP TABLE m_spells AS"
          " SELECT customer_id, kind, active_after AS active, {month_t} AS mt, {month_next} AS mn FROM m_changes")
# RP per month: customers reactivated in m whose spell at S is an inactive one.
MONTH_REACTIVATED_FROM_POOL = (
    "SELECT r.mt, count(DISTINCT r.customer_id) FROM m_spells r"
    " JOIN m_spells s ON s.customer_id = r.customer_id AND s.active <> true AND s.mt < r.mt"
    "                 AND (s.mn IS NULL OR s.mn >= r.mt)"
    " WHERE r.kind = 'reactivated' AND r.mt >= %(m0)s AND r.mt <= %(m1)s GROUP BY r.mt")
# Per month, over one row per customer and month with revenue in it or in the month before (a month they
# ordered in, x.buyer; the month after one, when they did not order in it), each joined to the customer's
# active spell at S if any (spells do not overlap: at most one):
# - revenue, buyers, repeat buyers (more than one order, or an earlier month) and up-sell's buyers with orders
#   in the 12 months before and those whose mean order grew by the threshold (acquisition.UPSELL, in cents:
#   in bigint while both products stay below 2^62 (cents below 2^31, counts below 2^14, the threshold's basis
#   points below 2^17), in numeric beyond; numeric for every row cost a quarter of the statement);
# - revenue churn over the customers active at S: their revenue in m - 1 against m.
MONTH_MONEY = (
    "SELECT x.m, sum(CASE WHEN x.buyer THEN x.cur ELSE 0 END), sum(CASE WHEN x.buyer THEN 1 ELSE 0 END),"
    "       sum(CASE WHEN x.buyer AND (x.n > 1 OR x.prev_month IS NOT NULL) THEN 1 ELSE 0 END),"
    "       sum(CASE WHEN x.buyer AND x.year_n > 0 THEN 1 ELSE 0 END),"
    "       sum(CASE WHEN x.buyer AND x.year_n > 0 AND CASE"
    "                WHEN x.cur < 2147483648 AND x.year_cents < 2147483648 AND x.n < 16384 AND x.year_n < 16384"
    "                THEN x.cur * x.year_n * %(bp)s >= (%(bp)s + %(threshold)s) * x.year_cents * x.n"
    "                ELSE CAST(x.cur AS numeric) * x.year_n * %(bp)s"
    "                     >= CAST(%(bp)s + %(threshold)s AS numeric) * x.year_cents * x.n END THEN 1 ELSE 0 END),"
    "       COALESCE(sum(CASE WHEN s.customer_id IS NOT NULL THEN x.prev END), 0),"
    "       COALESCE(sum(CASE WHEN s.customer_id IS NOT NULL AND x.prev > x.cur THEN x.prev - x.cur END), 0),"
    "       COALESCE(sum(CASE WHEN s.customer_id IS NOT NULL AND x.cur > x.prev THEN x.cur - x.prev END), 0)"
    " FROM (SELECT customer_id, month AS m, true AS buyer, prev_cents AS prev, cents AS cur, n, prev_month,"
    "              year_n, year_cents FROM m_cm WHERE month >= %(m0)s AND month <= %(m1)s"
    "       UNION ALL"
    "       SELECT customer_id, month + 1, false, cents, 0, 0, NULL, 0, 0 FROM m_cm"
    "       WHERE month + 1 >= %(m0)s AND month + 1 <= %(m1)s AND (next_month IS NULL OR next_month <> month + 1)) x"
    " LEFT JOIN m_spells s ON s.customer_id = x.customer_id AND s.active = true AND s.mt < x.m"
    "                     AND (s.mn IS NULL OR s.mn >= x.m)"
    " GROUP BY x.m")
# Loyalty: from a month with orders up to the next one, a customer has at least 3 orders in the 12 months up to
# month x while x < third_month + 12; intersected with the active spells at E (mt <= x < mn), clamped to the
# months asked for and counted per range [lo, hi) of months (each customer's ranges are disjoint).
MONTH_LOYAL = (
    "SELECT lo, hi, count(*) FROM ("
    "  SELECT CASE WHEN a > %(m0)s THEN a ELSE %(m0)s END AS lo, CASE WHEN b < %(m1)s + 1 THEN b ELSE %(m1)s + 1 END AS hi"
    "  FROM (SELECT CASE WHEN c.month > s.mt THEN c.month ELSE s.mt END AS a,"
    "               CASE WHEN s.mn IS NOT NULL AND s.mn < c.until THEN s.mn ELSE c.until END AS b"
    "        FROM (SELECT customer_id, month,"
    "                     CASE WHEN next_month IS NOT NULL AND next_month < third_month + 12 THEN next_month"
    "                          ELSE third_month + 12 END AS until"
    "              FROM m_cm WHERE third_month IS NOT NULL AND third_month + 12 > month"
    "                AND month <= %(m1)s AND third_month + 12 > %(m0)s) c"
    "        JOIN m_spells s ON s.customer_id = c.customer_id AND s.active = true"
    "             AND s.mt < c.until AND (s.mn IS NULL OR s.mn > c.month)) i) k"
    " WHERE lo < hi GROUP BY lo, hi")
# Predicted CLV of the customers acquired in each month that have one (acquisition.NEW_CUSTOMERS_PREDICTED_CLV).
MONTH_PREDICTED_CLV = (
    "SELECT s.mt, count(*), sum(pr.predicted_clv_12m) FROM m_spells s"
    " JOIN {prediction} pr ON pr.customer_id = s.customer_id"
    " WHERE s.kind = 'acquired' AND s.mt >= %(m0)s AND s.mt <= %(m1)s AND pr.predicted_clv_12m IS NOT NULL GROUP BY s.mt")
# Cross-sell: the months each customer ordered each known category in (one pass over the lines); a customer's
# first month of any known category makes them a previous buyer in every later month (acquisition.py).
# Index: order_line's order (the orders of a part's customers).
CATEGORY_MONTHS = (
    "CREATE TEMP TABLE m_catm AS SELECT o.customer_id, {month} AS month, l.category"
    " FROM {line} l JOIN {order} o ON o.id = l.order_id"
    " WHERE l.category <> '' AND o.ordered_at < %(until)s{customers} GROUP BY 1, 2, 3")
FIRST_CATEGORY_MONTHS = (
    "CREATE TEMP TABLE m_catf AS SELECT f.customer_id, f.category, f.month, min(f.month) OVER (PARTITION BY f.customer_id)"
    " AS first_any FROM (SELECT customer_id, category, min(month) AS month FROM m_catm GROUP BY 1, 2) f")
MONTH_CROSS_SELL_BASE = (
    "SELECT c.month, count(DISTINCT c.customer_id) FROM m_catm c"
    " JOIN (SELECT DISTINCT customer_id, first_any FROM m_catf) f ON f.customer_id = c.customer_id"
    " WHERE f.first_any < c.month AND c.month >= %(m0)s AND c.month <= %(m1)s GROUP BY c.month")
MONTH_CROSS_SELL_NEW = (
    "SELECT month, count(DISTINCT customer_id) FROM m_catf"
    " WHERE first_any < month AND month >= %(m0)s AND month <= %(m1)s GROUP BY month")
MONTH_CROSS_SELL_BY_CATEGORY = (
    "SELECT month, category, count(*) FROM m_catf"
    " WHERE first_any < month AND month >= %(m0)s AND month <= %(m1)s GROUP BY month, category")
# The program's counts per month of the whole shop (the finishing step; metrics.sql PROGRAM_* per period).
# Index: case_status_closed, case_customer_time (the months' range), coupon's and feedback's times.
MONTH_CASES_CLOSED = (
    "SELECT {month_closed},"
    "  sum(CASE WHEN status = 'won' THEN 1 ELSE 0 END),"
    "  sum(CASE WHEN status IN ('won', 'returned', 'lost') THEN 1 ELSE 0 END)"
    " FROM {case} WHERE kind = 'winback' AND closed_at >= %(s)s AND closed_at < %(e)s GROUP BY 1")
MONTH_CASES_OPENED = (
    "SELECT {month_opened},"
    "  sum(CASE WHEN status <> 'void' AND NOT holdout THEN 1 ELSE 0 END),"
    "  sum(CASE WHEN status IN ('won', 'returned') AND NOT holdout THEN 1 ELSE 0 END),"
    "  sum(CASE WHEN status <> 'void' AND holdout THEN 1 ELSE 0 END),"
    "  sum(CASE WHEN status IN ('won', 'returned') AND holdout THEN 1 ELSE 0 END)"
    " FROM {case} WHERE kind = 'winback' AND opened_at >= %(s)s AND opened_at < %(e)s GROUP BY 1")
MONTH_COUPONS = ("SELECT {month_issued}, count(*), sum(CASE WHEN " + COUPON_REDEEMED + " THEN 1 ELSE 0 END)"
                 " FROM {coupon} WHERE " + COUPON_ISSUED_IN_P + " GROUP BY 1")
MONTH_FEEDBACK = (
    "SELECT {month_responded}, kind, count(*), sum(score),"
    "       sum(CASE WHEN " + NPS_PROMOTER + " THEN 1 ELSE 0 END), sum(CASE WHEN " + NPS_DETRACTOR + " THEN 1 ELSE 0 END),"
    "       sum(CASE WHEN " + CSAT_SATISFIED + " THEN 1 ELSE 0 END)"
    " FROM {feedback} WHERE " + FEEDBACK_IN_P + " GROUP BY 1, 2")
# A refresh's customer ranges of about equal work: the customers by id, weighed by their orders (each part
# reads its customers' orders and events, and the earliest customers have the longest histories); each
# bucket's first id is a cut. Index: the customers' primary key.
CUSTOMER_CUTS = render(
    "SELECT b, min(id) FROM (SELECT id, (sum(order_count + 1) OVER (ORDER BY id ROWS UNBOUNDED PRECEDING) - 1)"
    "                               * %(parts)s / %(total)s AS b FROM {customer}) x"
    " GROUP BY b ORDER BY b", customer=Customer)
CUSTOMER_WEIGHT = render("SELECT count(*), COALESCE(sum(order_count + 1), 0) FROM {customer}", customer=Customer)
