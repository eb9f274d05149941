"""The KPI snapshots at scale: the 36-month refresh against a hand-written floor, and the KPI page.

    VAR_DIR=/tmp/bench-metrics-var DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
        REDIS_URL=redis://127.0.0.1:6379/12 .venv/bin/python bench/metrics.py [--customers 1000000] \
        [--orders 10000000] [--keep] [--reuse] [--no-workers] [--only-refresh]

PostgreSQL only. It works in its own database (`bench_metrics_<customers>_<orders>` on the DATABASE_URL
server, dropped, created and migrated afresh; with --reuse an existing one built by this bench with the same
scale is used as it is), and measures in one run:
  0. the data: bench/lifecycle.py's set-based build (N customers with their own purchase rhythm, M orders over
     the 3 years before NOW; NOW = today 00:00 UTC here, so "the last 36 months" and "the last complete
     month" of the real services are the months of the data), then the real `lifecycle_scan(full=True,
     now=NOW)` fills winback_lifecycleevent and opens the cases; then a call history of the 6 months before
     NOW, written in SQL as the agents' page would leave it (agents, a Contact + Disposition per call,
     outcomes, reasons, callbacks and the calls that kept them, coupons, some redeemed, won cases), so the
     agent and reasons tables of the KPI page have work to do; order lines on a tenth of the orders (1 to 3
     each from a catalogue of 20 products in 5 categories, summing to the order's amount), so cross-sell has
     work; VACUUM ANALYZE;
  1. the floor, best of 2: two read-only SELECTs, the churn floor (CS, L0 and L0/CS of the 36 months from
     winback_lifecycleevent, docs/metrics.md s.2-3) and each customer's order count and sum per month over all
     the orders (grouped by the server, summed up there: the grouping is paid for, not the transfer);
  2. the refresh of the 36 months as a batch run (metrics_refresh_start: DEFAULT_PARTS parts of customers, one
     of order lines, one of the program's tables) inline, best of
     2, with the time per SQL statement and per part, its ratio to the floor (target <= 2), its churn checked
     equal to the floor's; then the same run on a real Celery worker (core.worker_process.worker_spawn against
     the bench database, the broker of REDIS_URL) with 1 and with 2 processes, each checked to store the same
     snapshots as the inline run (skipped with --no-workers);
  3. the KPI page (GET /admin/metrics/metricsnapshot/?month=<last complete month>) through Django's test
     Client in this process (a manager logged in with force_login; no HTTP server, no network): 2 warm-ups,
     then --requests timed GETs, p50/p95; then its parts timed one by one (kpis_for_period x2, series_for x6,
     cohort_retention, reasons_table, agent_table) and the queries one page sends;
  4. machine and software, and the command to reproduce.
With --only-refresh (while changing the refresh) it runs the floor and the inline refresh once each, with the
time per statement, and stops there (no workers, no KPI page).
"""

import sys
from pathlib import Path

# Run as `python bench/metrics.py`, Python puts bench/ first on sys.path, where this very file would shadow
# the `metrics` app (and a sibling bench a standard module): use the project root instead.
ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import importlib.util  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from bench.scratch_db import database_urls  # noqa: E402


def _load_lifecycle_bench():
    """bench/lifecycle.py (not a package): its build of customers and orders is reused as it is."""
    spec = importlib.util.spec_from_file_location("bench_lifecycle", ROOT / "bench" / "lifecycle.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


lc = _load_lifecycle_bench()

SEED = 0.37
MONTHS = 36
N_AGENTS = 20
PASSWORD = "bench-metrics-manager"
MANAGER = "bench_manager"

# --- The floor -------------------------------------------------------------------------------------------
# Each acquired/reactivated change (t, next change at next_t) makes the customer active at every month start
# S with t < S <= next_t: from date_trunc(month, t) + 1 month to date_trunc(month, next_t) (for a month start
# S, S <= next_t iff S <= date_trunc(month, next_t)), none when both fall in one month; +1/-1 at the ends,
# summed cumulatively. The change
# that ends it, when it is a lapse or a cancellation falling in that last month, puts the customer in L0 of
# that month. Months are truncated in the session time zone (set to the business TIME_ZONE).
FLOOR_SQL = """
WITH ch AS (
    SELECT kind, occurred_at AS t,
           lead(occurred_at) OVER w AS next_t,
           lead(kind) OVER w AS next_kind
    FROM winback_lifecycleevent
    WHERE kind IN ('acquired', 'reactivated', 'lapsed', 'cancelled')
    WINDOW w AS (PARTITION BY customer_id ORDER BY occurred_at, {precedence}, id)
), act AS (
    SELECT date_trunc('month', t) + interval '1 month' AS m_in, date_trunc('month', next_t) AS m_last, next_kind
    FROM ch WHERE kind IN ('acquired', 'reactivated')
), d AS (
    SELECT m_in AS m, 1 AS dcs, 0 AS l0 FROM act WHERE m_last IS NULL OR m_last >= m_in
    UNION ALL SELECT m_last + interval '1 month', -1, 0 FROM act WHERE m_last >= m_in
    UNION ALL SELECT m_last, 0, 1 FROM act WHERE m_last >= m_in AND next_kind IN ('lapsed', 'cancelled')
    UNION ALL SELECT generate_series(%(first)s::timestamptz, %(last)s::timestamptz, interval '1 month'), 0, 0
), per AS (
    SELECT m, sum(sum(dcs)) OVER (ORDER BY m) AS cs, sum(l0) AS l0 FROM d GROUP BY m
)
SELECT m, cs::bigint, l0::bigint, CASE WHEN cs > 0 THEN l0::numeric / cs END AS churn_rate
FROM per WHERE m >= %(first)s AND m <= %(last)s ORDER BY m
"""

# The floor's second statement: each customer's order count and sum per month (in the session time zone, the
# business one) over all the orders, computed by the server and summed up there, so that the statement pays
# for the grouping and not for sending millions of rows.
FLOOR_ORDERS_SQL = """
SELECT count(*), sum(n), sum(s) FROM (
    SELECT customer_id, date_trunc('month', ordered_at) AS m, count(*) AS n, sum(amount) AS s
    FROM crm_order GROUP BY 1, 2) cm
"""

# --- Order lines -----------------------------------------------------------------------------------------
# A tenth of the orders (every tenth id) get 1 to 3 lines from a catalogue of 20 products in 5 categories (the
# 20th product has none: an unknown category). A customer mostly buys from a few products near their own and
# now and then from further away, so cross-sell (a first order of a category) happens; the lines sum to the
# order's amount (the last takes the rest of the rounding).
CATEGORIES = ["books", "garden", "kitchen", "toys", "sport"]
LINES_SQL = """
INSERT INTO crm_orderline (order_id, position, product_id, product_name, category, quantity, amount)
SELECT o.id, g.pos, 'P' || lpad(p.product::text, 2, '0'), 'Product ' || p.product,
       CASE WHEN p.product = 19 THEN '' ELSE (%(categories)s::text[])[1 + p.product %% 5] END, 1,
       CASE WHEN g.pos < o.k THEN round(o.amount / o.k, 2) ELSE o.amount - round(o.amount / o.k, 2) * (o.k - 1) END
FROM (SELECT id, customer_id, amount, 1 + (id / 10) %% 3 AS k FROM crm_order WHERE id %% 10 = 0) o
CROSS JOIN LATERAL generate_series(1, o.k) AS g(pos)
CROSS JOIN LATERAL (SELECT (o.customer_id * 3 + g.pos + CASE WHEN (o.id / 10) %% 7 = 0 THEN o.id / 70 ELSE 0 END) %% 20
                    AS product) p
ORDER BY o.id, g.pos
"""


def build_lines(conn) -> dict:
    t0 = time.perf_counter()
    conn.execute(LINES_SQL, {"categories": CATEGORIES})
    conn.execute("ANALYZE crm_orderline")
    row = conn.execute("SELECT count(*), count(DISTINCT order_id), count(*) FILTER (WHERE category = '')"
                       " FROM crm_orderline").fetchone()
    wrong = conn.execute("SELECT count(*) FROM (SELECT o.id FROM crm_order o JOIN crm_orderline l ON l.order_id = o.id"
                         " GROUP BY o.id, o.amount HAVING sum(l.amount) <> o.amount) x").fetchone()[0]
    return {"lines": row[0], "orders": row[1], "unknown": row[2], "wrong_sums": wrong, "seconds": time.perf_counter() - t0}


# --- The call history ------------------------------------------------------------------------------------
CALLS_SQL = """
CREATE TEMP TABLE bench_calls AS
SELECT g AS n, k.case_id, k.customer_id, (%(agents)s::int[])[1 + floor(random() * %(n_agents)s)::int] AS agent_id,
       %(now)s::timestamptz - random() * interval '183 days' AS at,
       CASE WHEN r < 0.35 THEN 'no_answer' WHEN r < 0.50 THEN 'voicemail' WHEN r < 0.55 THEN 'busy'
            WHEN r < 0.75 THEN 'reached_declined' WHEN r < 0.90 THEN 'reached_will_return'
            WHEN r < 0.97 THEN 'callback_requested' WHEN r < 0.99 THEN 'complaint_escalated'
            ELSE 'do_not_call' END AS outcome,
       random() AS r_reason, random() AS r_coupon, random() AS r_redeem, random() AS r_kept, random() AS r_won
FROM (SELECT g, 1 + floor(random() * %(n_cases)s)::int AS rn, random() AS r
      FROM generate_series(1, %(calls)s) g) x
JOIN bench_cases k ON k.rn = x.rn
"""


def build_calls(conn, now: dt.datetime, calls_per_month: int, agent_ids: list[int]) -> dict:
    """About calls_per_month calls a month over the 6 months before NOW, on random contactable cases."""
    conn.execute("SET TIME ZONE 'UTC'")
    conn.execute("SET max_parallel_workers_per_gather = 0")  # serial: random() stays seeded
    conn.execute("SELECT setseed(%s)", [SEED])
    conn.execute("CREATE TEMP TABLE bench_cases AS SELECT row_number() OVER (ORDER BY id) AS rn, id AS case_id, customer_id"
                 " FROM winback_winbackcase WHERE kind = 'winback' AND NOT holdout")
    conn.execute("CREATE INDEX ON bench_cases (rn)")
    n_cases = conn.execute("SELECT count(*) FROM bench_cases").fetchone()[0]
    if not n_cases:
        return {"calls": 0, "cases": 0}
    reasons = [r[0] for r in conn.execute("SELECT id FROM winback_leavereason ORDER BY position, id").fetchall()]
    conn.execute(CALLS_SQL, {"agents": agent_ids, "n_agents": len(agent_ids), "now": now, "n_cases": n_cases,
                             "calls": calls_per_month * 6})
    # Callbacks: a day or three later; 60% kept by the same agent within a few minutes of the time.
    conn.execute("ALTER TABLE bench_calls ADD callback_at timestamptz, ADD reason_id int")
    conn.execute("UPDATE bench_calls SET callback_at = at + (1 + floor(r_kept * 3)) * interval '1 day'"
                 " + interval '2 hours' WHERE outcome = 'callback_requested'")
    conn.execute("""
        INSERT INTO bench_calls (n, case_id, customer_id, agent_id, at, outcome, r_reason, r_coupon, r_redeem, r_kept, r_won)
        SELECT (SELECT max(n) FROM bench_calls) + row_number() OVER (ORDER BY n), case_id, customer_id, agent_id,
               callback_at + (random() * 10 - 3) * interval '1 minute',
               CASE WHEN random() < 0.5 THEN 'reached_will_return' ELSE 'reached_declined' END,
               random(), random(), random(), 1, random()
        FROM bench_calls WHERE outcome = 'callback_requested' AND r_kept < 0.6 AND callback_at < %(now)s""", {"now": now})
    conn.execute("UPDATE bench_calls SET reason_id = (%(reasons)s::int[])[1 + floor(r_reason * 10000)::int %% %(k)s]"
                 " WHERE outcome IN ('reached_declined', 'reached_will_return', 'complaint_escalated', 'do_not_call')"
                 " AND r_reason < 0.7", {"reasons": reasons, "k": len(reasons)})
    conn.execute("""
        INSERT INTO crm_contact (external_id, customer_id, channel, direction, occurred_at, agent_id, outcome, notes, created_at)
        SELECT 'BENCH-CALL-' || n, customer_id, 'call', 'outbound', at, agent_id, outcome, '', at FROM bench_calls ORDER BY at""")
    conn.execute("""
        INSERT INTO winback_coupon (code, customer_id, case_id, issued_at, expires_at, redeemed_at)
        SELECT 'BENCH' || n, customer_id, case_id, at, at + interval '30 days',
               CASE WHEN r_redeem < 0.3 AND at + r_redeem * interval '60 days' < %(now)s THEN at + r_redeem * interval '60 days' END
        FROM bench_calls WHERE outcome IN ('reached_declined', 'reached_will_return') AND r_coupon < 0.4 ORDER BY at""",
                 {"now": now})
    conn.execute("""
        INSERT INTO winback_disposition (case_id, agent_id, contact_id, outcome, reason_id, note, callback_at, coupon_id, created_at)
        SELECT b.case_id, b.agent_id, ct.id, b.outcome, b.reason_id, '', b.callback_at, cp.id, b.at
        FROM bench_calls b
        JOIN crm_contact ct ON ct.external_id = 'BENCH-CALL-' || b.n
        LEFT JOIN winback_coupon cp ON cp.code = 'BENCH' || b.n
        ORDER BY b.at""")
    # Won: a third of the cases whose last call was a "will return", closed a few days after it.
    won = conn.execute("""
        UPDATE winback_winbackcase c SET status = 'won', closed_at = x.closed_at, close_reason = 'Ordered again.',
               ready = false, updated_at = x.closed_at
        FROM (SELECT case_id, at + (1 + 9 * r_won) * interval '1 day' AS closed_at
              FROM (SELECT DISTINCT ON (case_id) case_id, at, outcome, r_won FROM bench_calls ORDER BY case_id, at DESC) l
              WHERE outcome = 'reached_will_return' AND r_won < 0.33
                AND at + (1 + 9 * r_won) * interval '1 day' < %(now)s) x
        WHERE c.id = x.case_id""", {"now": now}).rowcount
    calls = conn.execute("SELECT count(*) FROM bench_calls").fetchone()[0]
    worked = conn.execute("SELECT count(DISTINCT case_id) FROM bench_calls").fetchone()[0]
    coupons = conn.execute("SELECT count(*), count(redeemed_at) FROM winback_coupon WHERE code LIKE 'BENCH%%'").fetchone()
    callbacks = conn.execute("SELECT count(*) FROM bench_calls WHERE callback_at IS NOT NULL").fetchone()[0]
    conn.execute("DROP TABLE bench_calls, bench_cases")
    return {"calls": calls, "cases": n_cases, "worked": worked, "won": won, "coupons": coupons[0],
            "redeemed": coupons[1], "callbacks": callbacks}


# --- Helpers ---------------------------------------------------------------------------------------------

def best_of(n: int, fn):
    runs, out = [], None
    for _ in range(n):
        t0 = time.perf_counter()
        out = fn()
        runs.append(time.perf_counter() - t0)
    return min(runs), runs, out


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(values)
    return s[max(0, min(len(s) - 1, math.ceil(q * len(s)) - 1))]


def machine_info(conn) -> list[str]:
    import django

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    mem = next((int(line.split()[1]) // 1024 for line in open("/proc/meminfo") if line.startswith("MemTotal")), 0)
    pg = conn.execute("SELECT version()").fetchone()[0].split(" on ")[0]
    settings = {k: conn.execute(f"SHOW {k}").fetchone()[0] for k in
                ("shared_buffers", "work_mem", "max_parallel_workers_per_gather", "effective_cache_size")}
    return [f"machine: {os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable), {cpu}, {mem:,} MB RAM,"
            f" {platform.system()} {platform.release()}",
            f"software: Python {platform.python_version()}, Django {django.get_version()}, {pg}; "
            + ", ".join(f"{k} {v}" for k, v in settings.items())]


def metrics_code() -> str:
    """A hash of the metrics code measured, and its files that differ from HEAD (read-only git)."""
    import hashlib

    files = sorted((ROOT / "metrics").rglob("*.py")) + [ROOT / "templates" / "admin" / "metrics" / "kpis.html"]
    digest = hashlib.sha1()
    for f in files:
        digest.update(f.read_bytes())
    proc = subprocess.run(["git", "status", "--porcelain", "--", "metrics", "templates/admin/metrics"], cwd=ROOT,
                          capture_output=True, text=True)
    dirty = " ".join(line[3:] for line in proc.stdout.splitlines())
    return f"metrics files {digest.hexdigest()[:10]}" + (f" (uncommitted: {dirty})" if dirty else "")


class StatementTimer:
    """Time per SQL statement (keyed by its first words), for the breakdown of metrics_refresh."""

    def __init__(self) -> None:
        self.stats: dict[str, list] = {}
        self.kinds: dict[str, float] = {}  # by the table read: on the full statement text

    def __call__(self, execute, sql, params, many, context):
        t0 = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            elapsed = time.perf_counter() - t0
            key = " ".join(sql.split())[:120]
            s = self.stats.setdefault(key, [0, 0.0])
            s[0] += 1
            s[1] += elapsed
            # By the tables read (the refresh's own temp tables included): its order sums (crm_order, crm_orderline,
            # m_cm, m_catm/m_catf), its lifecycle counts (m_changes, m_spells), the program tables, the rest
            # (snapshot rows, settings, the batch run's rows).
            kind = ("orders" if any(t in sql for t in ("crm_order", "m_cm", "m_cat")) else
                    "lifecycle" if any(t in sql for t in ("m_changes", "m_spells")) else
                    "program" if any(t in sql for t in ("winback_winbackcase", "winback_coupon", "crm_feedback",
                                                         "winback_disposition")) else
                    "rest")
            self.kinds[kind] = self.kinds.get(kind, 0.0) + elapsed

    def groups(self) -> dict[str, float]:
        return {k: self.kinds.get(k, 0.0) for k in ("lifecycle", "orders", "program", "rest")}

    def table(self, total: float, top: int = 12) -> list[str]:
        timed = sum(s[1] for s in self.stats.values())
        lines = [f"time per statement ({len(self.stats)} distinct, {sum(s[0] for s in self.stats.values()):,} executions,"
                 f" {timed:.1f}s of {total:.1f}s in SQL):"]
        for key, (calls, seconds) in sorted(self.stats.items(), key=lambda kv: -kv[1][1])[:top]:
            lines.append(f"  {seconds:7.2f}s {100 * seconds / total:5.1f}%  x{calls:<4} {key}")
        return lines


def snapshot_digest() -> str:
    """A hash of every stored snapshot figure (not when it was computed), to compare two refreshes."""
    import hashlib

    from metrics.models import MetricSnapshot

    digest = hashlib.sha1()
    for row in MetricSnapshot.objects.order_by("metric", "start", "end").values_list(
            "metric", "start", "end", "value", "numerator", "denominator", "extra").iterator():
        digest.update(repr(row).encode())
    return digest.hexdigest()


# --- Main ------------------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--calls-per-month", type=int, help="agent calls per month (default: customers / 40)")
    parser.add_argument("--requests", type=int, default=30, help="timed GETs of the KPI page")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument("--reuse", action="store_true", help="reuse the bench database if it holds this data")
    parser.add_argument("--no-workers", action="store_true", help="skip the refresh on Celery workers")
    parser.add_argument("--only-refresh", action="store_true",
                        help="while iterating: the floor and the inline refresh once each, no workers, no KPI page")
    args = parser.parse_args()
    calls_per_month = args.calls_per_month if args.calls_per_month is not None else args.customers // 40

    import psycopg

    url, bench_db, bench_url, admin_url = database_urls(name=f"bench_metrics_{args.customers}_{args.orders}")
    os.environ.setdefault("VAR_DIR", tempfile.mkdtemp(prefix="bench-metrics-var-"))
    os.environ.update({"DATABASE_URL": bench_url, "DJANGO_SETTINGS_MODULE": "config.settings", "PYTHONUNBUFFERED": "1"})
    redis = f" REDIS_URL={os.environ['REDIS_URL']}" if os.environ.get("REDIS_URL") else ""
    reproduce = (f"cd {ROOT} && VAR_DIR={os.environ['VAR_DIR']} DATABASE_URL={url}{redis} timeout 3600 .venv/bin/python"
                 f" bench/metrics.py " + shlex.join(sys.argv[1:]))

    print("metrics bench: the 36-month snapshot refresh against a hand-written floor, and the KPI page")
    print(f"reproduce: {reproduce}")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        for line in machine_info(admin):
            print(line)
    print(f"code: {lc.code_version()}; {metrics_code()}")

    t_start = time.perf_counter()
    reused = False
    if args.reuse:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [bench_db]).fetchone()
        if exists:
            with psycopg.connect(bench_url, autocommit=True) as conn:
                if conn.execute("SELECT to_regclass('bench_metrics_meta')").fetchone()[0]:
                    row = conn.execute("SELECT customers, orders, now_at, calls_per_month FROM bench_metrics_meta").fetchone()
                    reused = row[:2] == (args.customers, args.orders) and row[3] == calls_per_month
                    now = row[2]
    try:
        if reused:
            subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, check=True)
            print(f"0. reused {bench_db} (NOW {now:%Y-%m-%d %H:%M} UTC)")
        else:
            now = dt.datetime.combine(dt.date.today(), dt.time(), tzinfo=dt.timezone.utc)
            lc.NOW = now  # lifecycle.build() reads its module's NOW
            with psycopg.connect(admin_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{bench_db}" WITH (FORCE)')
                admin.execute(f'CREATE DATABASE "{bench_db}"')
            subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, check=True)
            t0 = time.perf_counter()
            with psycopg.connect(bench_url, autocommit=True) as conn:
                lc.build(conn, args.customers, args.orders)
            print(f"0. build (bench/lifecycle.py): {args.customers:,} customers, {args.orders:,} orders in"
                  f" {time.perf_counter() - t0:.1f}s, NOW {now:%Y-%m-%d %H:%M} UTC")
        with psycopg.connect(bench_url, autocommit=True) as conn:
            lc.describe(conn)

        import django

        django.setup()
        from django.conf import settings
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Group
        from django.db import connection, reset_queries
        from django.test import Client
        from django.test.utils import CaptureQueriesContext
        from django.utils import timezone

        from core.roles import AGENTS, MANAGERS
        from metrics.services import snapshots as snapshots_module
        from metrics.services.calculators import _build_changes
        from winback.sql import PRECEDENCE_SQL
        from metrics.services.cohorts import cohort_retention
        from metrics.services.kpis import kpis_for_period, series_for
        from metrics.services.periods import Period, add_months, month_of
        from metrics.services.program import agent_table, reasons_table
        from metrics.services.snapshots import DEFAULT_PARTS, metrics_refresh_start, recent_months
        from winback.services.lifecycle import lifecycle_scan

        User = get_user_model()
        if not reused:
            t0 = time.perf_counter()
            result = lifecycle_scan(full=True, now=now)
            print(f"   lifecycle_scan(full=True, now=NOW): {time.perf_counter() - t0:.1f}s; {result.summary()}")
            agents = User.objects.bulk_create([User(username=f"bench_agent_{i:02d}", password="!", is_active=True)
                                               for i in range(1, N_AGENTS + 1)])
            agents = list(User.objects.filter(username__startswith="bench_agent_").order_by("id"))
            Group.objects.get(name=AGENTS).user_set.add(*agents)
            manager = User.objects.create_user(MANAGER, password=PASSWORD, is_staff=True)
            manager.groups.add(Group.objects.get(name=MANAGERS))
            t0 = time.perf_counter()
            with psycopg.connect(bench_url, autocommit=True) as conn:
                calls = build_calls(conn, now, calls_per_month, [a.pk for a in agents])
                conn.execute("VACUUM ANALYZE")
                conn.execute("CREATE TABLE bench_metrics_meta AS SELECT %s::int AS customers, %s::bigint AS orders,"
                             " %s::timestamptz AS now_at, %s::int AS calls_per_month",
                             [args.customers, args.orders, now, calls_per_month])
                conn.execute("CHECKPOINT")
            print(f"   call history (6 months before NOW, {N_AGENTS} agents): {calls['calls']:,} calls on"
                  f" {calls.get('worked', 0):,} of {calls['cases']:,} contactable cases, {calls.get('callbacks', 0):,}"
                  f" callbacks booked, {calls.get('coupons', 0):,} coupons ({calls.get('redeemed', 0):,} redeemed),"
                  f" {calls.get('won', 0):,} cases won; VACUUM ANALYZE; {time.perf_counter() - t0:.1f}s")
        with psycopg.connect(bench_url, autocommit=True) as conn:
            if not conn.execute("SELECT EXISTS (SELECT 1 FROM crm_orderline)").fetchone()[0]:
                lines = build_lines(conn)
                conn.execute("VACUUM ANALYZE crm_orderline")
                print(f"   order lines on a tenth of the orders: {lines['lines']:,} lines on {lines['orders']:,} orders"
                      f" ({lines['unknown']:,} of an unknown category; {lines['wrong_sums']} orders whose lines do not"
                      f" sum to the amount) in {lines['seconds']:.1f}s")
            line_count = conn.execute("SELECT count(*) FROM crm_orderline").fetchone()[0]
            events = dict(conn.execute("SELECT kind, count(*) FROM winback_lifecycleevent GROUP BY kind").fetchall())
        print(f"   events {sum(events.values()):,} ({', '.join(f'{k} {v:,}' for k, v in sorted(events.items()))});"
              f" {line_count:,} order lines")

        # 1. The floor: the churn floor's 36 monthly counts, then the per-customer, per-month order counts and sums.
        periods = recent_months(months=MONTHS)
        first, last = periods[0].bounds()[0], periods[-1].bounds()[0]
        floor_sql = FLOOR_SQL.format(precedence=PRECEDENCE_SQL)
        floor_parts: dict[str, list[float]] = {"churn": [], "orders": []}
        with psycopg.connect(bench_url, autocommit=True) as conn:
            conn.execute("SELECT set_config('TimeZone', %s, false)", [settings.TIME_ZONE])
            conn.execute("SET work_mem = '256MB'")  # as the refresh's transaction has it

            def floor_run():
                t0 = time.perf_counter()
                rows = conn.execute(floor_sql, {"first": first, "last": last}).fetchall()
                t1 = time.perf_counter()
                sums = conn.execute(FLOOR_ORDERS_SQL).fetchone()
                floor_parts["churn"].append(t1 - t0)
                floor_parts["orders"].append(time.perf_counter() - t1)
                return rows, sums

            floor_s, floor_runs, (floor_rows, floor_sums) = best_of(1 if args.only_refresh else 2, floor_run)
        best_floor = floor_runs.index(floor_s)
        floor = {Period(m.astimezone(first.tzinfo).date(), add_months(m.astimezone(first.tzinfo).date(), 1)): (cs, l0)
                 for m, cs, l0, _ in floor_rows}
        print(f"1. floor: two read-only SELECTs, best of 2 {floor_s:.2f}s (runs {', '.join(f'{r:.2f}' for r in floor_runs)}):"
              f" the churn floor on winback_lifecycleevent, {len(floor_rows)} monthly rows ({periods[0]} .. {periods[-1]})"
              f" {floor_parts['churn'][best_floor]:.2f}s, and each customer's order count and sum per month over all"
              f" {args.orders:,} orders ({floor_sums[0]:,} customer-months, summed by the server)"
              f" {floor_parts['orders'][best_floor]:.2f}s")
        for i in range(0, len(floor_rows), 4):
            print("   " + "   ".join(f"{m.astimezone(first.tzinfo):%Y-%m} {l0:>7,}/{cs:>9,} {100 * float(r or 0):5.2f}%"
                                     for m, cs, l0, r in floor_rows[i:i + 4]))

        # 2. The refresh: a batch run (DEFAULT_PARTS parts of customers and 2 more) inline (best of 2, with the
        # time per statement), then
        # the same run on real Celery workers with 1 and with 2 processes.
        computed: list[dict] = []
        real_figures = snapshots_module.months_figures

        def capturing_figures(*, months, combined):
            out = real_figures(months=months, combined=combined)
            computed.append(out)
            return out

        snapshots_module.months_figures = capturing_figures
        timers: list[StatementTimer] = []
        part_times: list[list[float]] = []
        real_part = snapshots_module.refresh_part_compute

        def timed_part(**kwargs):
            t0 = time.perf_counter()
            out = real_part(**kwargs)
            part_times[-1].append(time.perf_counter() - t0)
            return out

        snapshots_module.refresh_part_compute = timed_part

        def refresh():
            timers.append(StatementTimer())
            part_times.append([])
            with connection.execute_wrapper(timers[-1]):
                return metrics_refresh_start(periods=recent_months(months=MONTHS), parts=DEFAULT_PARTS, inline=True)

        try:
            refresh_s, refresh_runs, run = best_of(1 if args.only_refresh else 2, refresh)
        finally:
            snapshots_module.months_figures = real_figures
            snapshots_module.refresh_part_compute = real_part
        best_run = refresh_runs.index(refresh_s)
        rows_written = run.result["rows"]
        inline_snapshots = snapshot_digest()
        print(f"2. the refresh of 36 months as a batch run of {run.parts_total} parts ({DEFAULT_PARTS} of customers,"
              f" 1 of order lines, 1 of the program's tables), inline"
              f" (metrics_refresh_start(inline=True), as `metrics_refresh --inline`): best of 2 {refresh_s:.2f}s"
              f" (runs {', '.join(f'{r:.2f}' for r in refresh_runs)}), {rows_written:,} snapshot rows;"
              f" ratio to the floor {refresh_s / floor_s:.2f}x (target <= 2)")
        parts_s = sum(part_times[best_run])
        print(f"   its parts {', '.join(f'{t:.2f}' for t in part_times[best_run])}s (sum {parts_s:.2f}s);"
              f" plan and finish (the figures from the parts' sums, the write) {refresh_s - parts_s:.2f}s")
        for line in timers[best_run].table(refresh_s):
            print("   " + line)
        groups = timers[best_run].groups()
        print(f"   by what it reads: lifecycle counts and cohort cells (m_changes, m_spells) {groups['lifecycle']:.2f}s;"
              f" orders and lines (crm_order, crm_orderline and m_cm, m_catm built from them: revenue, buyers, repeat"
              f" buyers, revenue churn, up-sell, loyalty, cross-sell) {groups['orders']:.2f}s; cases, coupons, feedback,"
              f" funnel {groups['program']:.2f}s; other SQL (snapshot rows, settings) {groups['rest']:.2f}s;"
              f" Python {refresh_s - sum(groups.values()):.2f}s")
        mine = computed[-1]
        mismatches = []
        for p in periods:
            f = mine[p]
            got = (int(f["CS"].value), int(f["L0"].value))
            rate = f["churn_rate"].value
            want = floor.get(p)
            floor_rate = (want[1] / want[0]) if want and want[0] else None
            if want is None or got != (want[0], want[1]) or (rate is None) != (floor_rate is None) or (
                    rate is not None and abs(rate - floor_rate) > 1e-12):
                mismatches.append(f"{p}: compute CS {got[0]:,} L0 {got[1]:,}, floor {want}")
        print(f"   check: churn (CS, L0, L0/CS) of the refresh == floor for"
              f" {len(periods) - len(mismatches)}/{len(periods)} months" + (": " + "; ".join(mismatches[:5]) if mismatches else ""))
        revenue = sum(float(mine[p]["revenue"].value) for p in periods)
        print(f"   check: revenue of the 36 months {revenue:,.2f}; cross-sell rate of {periods[-2]}"
              f" {mine[periods[-2]]['cross_sell_rate'].value}, up-sell {mine[periods[-2]]['upsell_rate'].value},"
              f" loyalty share {mine[periods[-2]]['loyalty_share'].value}")

        worker_s: dict[int, float] = {}
        worker_same: dict[int, bool] = {}
        if args.only_refresh:
            print(f"   (--only-refresh: no workers, no KPI page; load {os.getloadavg()[0]:.2f})")
            return
        if not args.no_workers:
            from config.celery import app
            from core.batches import batch_run_wait
            from core.worker_process import WORKER_OPTIONS, worker_spawn, worker_stop

            worker_env = {**os.environ, "DATABASE_URL": bench_url, "PYTHONUNBUFFERED": "1"}
            app.control.purge()  # nothing left over in the bench's own queue
            for processes in (1, 2):
                log_path = Path(os.environ["VAR_DIR"]) / f"bench-metrics-worker-{processes}.log"
                worker = worker_spawn(
                    argv=[sys.executable, "-m", "celery", "-A", "config", "worker", *WORKER_OPTIONS,
                          "--concurrency", str(processes), "-n", f"bench-metrics-{processes}-{os.getpid()}@%h"],
                    env=worker_env, cwd=ROOT, log_path=log_path, timeout=120)
                try:
                    t0 = time.perf_counter()
                    run = metrics_refresh_start(periods=recent_months(months=MONTHS), parts=DEFAULT_PARTS)
                    run = batch_run_wait(run=run, timeout=3600, poll_seconds=0.1)
                    worker_s[processes] = time.perf_counter() - t0
                finally:
                    worker_stop(worker)
                worker_same[processes] = snapshot_digest() == inline_snapshots
                print(f"   on a Celery worker with {processes} process{'es' if processes > 1 else ''}"
                      f" (metrics_refresh_start + batch_run_wait, as `metrics_refresh`): {worker_s[processes]:.2f}s,"
                      f" ratio to the floor {worker_s[processes] / floor_s:.2f}x; {run.parts_done}/{run.parts_total} parts;"
                      f" snapshots {'the same as' if worker_same[processes] else 'DIFFERENT from'} inline's")

        # 3. The KPI page.
        month = month_of(add_months(timezone.localdate().replace(day=1), -1))  # the last complete month
        url_page = f"/admin/metrics/metricsnapshot/?month={month.start:%Y-%m}"
        client = Client()
        # The page is the subject, not the login form (its lockout and second step are tested elsewhere).
        client.force_login(User.objects.get(username=MANAGER))

        def get():
            response = client.get(url_page)
            if response.status_code != 200:
                sys.exit(f"GET {url_page}: {response.status_code}")
            return response

        for _ in range(2):
            response = get()
        source = "snapshot" if b"Figures from the snapshot" in response.content else "NOT the snapshots"
        times = []
        for _ in range(args.requests):
            t0 = time.perf_counter()
            get()
            times.append(1000 * (time.perf_counter() - t0))
        reset_queries()  # the capture counts entries of a deque capped at 9,000
        with CaptureQueriesContext(connection) as ctx:
            get()
        p50, p95 = statistics.median(times), pct(times, 0.95)
        print(f"3. KPI page GET {url_page} (Django test Client in this process, manager logged in with"
              f" force_login; {len(response.content):,} bytes, figures from the {source}; {len(ctx.captured_queries):,}"
              f" SQL queries): {args.requests} requests after 2 warm-ups: p50 {p50:.0f} ms, p95 {p95:.0f} ms,"
              f" min {min(times):.0f} ms, max {max(times):.0f} ms (target p95 < 300 ms)")

        chart_range = Period(add_months(month.start, -11), month.end)
        charts = ["churn_rate", "retention_rate", "reactivation_rate", "new_customers", "case_win_rate", "nps"]

        def build_changes_only():
            from django.db import transaction

            with transaction.atomic(), connection.cursor() as cur:
                _build_changes(cur)
                cur.execute("DROP TABLE m_changes")

        parts = [
            ("kpis_for_period x2 (month and previous)", lambda: (kpis_for_period(period=month),
                                                                 kpis_for_period(period=month.previous()))),
            ("series_for x6 (12-month charts)", lambda: [series_for(metric=m, start=chart_range.start, end=chart_range.end)
                                                        for m in charts]),
            ("cohort_retention (12 cohorts)", lambda: cohort_retention(period=chart_range)),
            ("  _build_changes alone (temp table of all state changes; on the page only when cohorts are live)",
             build_changes_only),
            ("reasons_table", lambda: reasons_table(period=month)),
            ("agent_table", lambda: agent_table(period=month)),
        ]
        part_ms = {}
        for label, fn in parts:
            runs = []
            reset_queries()
            with CaptureQueriesContext(connection) as ctx:
                fn()
            n_queries = len(ctx.captured_queries)
            for _ in range(3):
                t0 = time.perf_counter()
                fn()
                runs.append(1000 * (time.perf_counter() - t0))
            part_ms[label] = (statistics.median(runs), n_queries)
        top = sum(ms for label, (ms, _) in part_ms.items() if not label.startswith(" "))
        cohort_source = cohort_retention(period=chart_range).get("source", "live")
        print(f"   parts (each called alone, median of 3; queries per call; the cohort matrix came from the {cohort_source}):")
        for label, (ms, n) in part_ms.items():
            print(f"   {ms:9.1f} ms  {100 * ms / p50:5.1f}% of p50  {n:>5,} queries  {label}")
        print(f"   parts sum to {top:.0f} ms against the page's p50 {p50:.0f} ms; the rest (template, admin context,"
              f" session and auth middleware) is the difference, {p50 - top:.0f} ms (noisy: the parts were timed apart)")

        print()
        print("=" * 100)
        print(f"metrics bench: {args.customers:,} customers, {args.orders:,} orders, {sum(events.values()):,} lifecycle"
              f" events, NOW {now:%Y-%m-%d %H:%M} UTC; {os.cpu_count()} cores; total run {time.perf_counter() - t_start:.0f}s")
        print(f"  floor: churn counts + per-customer-month order sums (best of 2) {floor_s:9.2f} s")
        print(f"  refresh of 36 months, {run.parts_total} batches inline (best of 2)        {refresh_s:9.2f} s"
              f"   ratio {refresh_s / floor_s:5.2f} x  (target <= 2)")
        for processes, seconds in worker_s.items():
            print(f"  refresh of 36 months on a worker, {processes} process{'es' if processes > 1 else '  '}        "
                  f"{seconds:9.2f} s   ratio {seconds / floor_s:5.2f} x  (snapshots"
                  f" {'equal to' if worker_same[processes] else 'DIFFERENT from'} inline)")
        print(f"  churn check refresh vs floor                    {len(periods) - len(mismatches):>6}/{len(periods)} months equal")
        print(f"  KPI page {month} (test Client, {args.requests} GETs, after 2 warm-ups)  p50 {p50:.0f} ms, p95 {p95:.0f} ms"
              f" (target p95 < 300 ms)")
        print("=" * 100)
    finally:
        if not args.keep:
            from django.db import connections

            try:
                connections.close_all()
            except Exception:
                pass
            with psycopg.connect(admin_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{bench_db}" WITH (FORCE)')


if __name__ == "__main__":
    main()
