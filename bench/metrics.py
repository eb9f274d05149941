"""The KPI snapshots at scale: 36 monthly snapshots against a hand-written floor, and the KPI page.

    VAR_DIR=/tmp/bench-metrics-var DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
        .venv/bin/python bench/metrics.py [--customers 1000000] [--orders 10000000] [--keep] [--reuse]

PostgreSQL only. It works in its own database (`bench_metrics_<customers>_<orders>` on the DATABASE_URL
server, dropped, created and migrated afresh; with --reuse an existing one built by this bench with the same
scale is used as it is), and measures in one run:
  0. the data: bench/lifecycle.py's set-based build (N customers with their own purchase rhythm, M orders over
     the 3 years before NOW; NOW = today 00:00 UTC here, so "the last 36 months" and "the last complete
     month" of the real services are the months of the data), then the real `lifecycle_scan(full=True,
     now=NOW)` fills winback_lifecycleevent and opens the cases; then a call history of the 6 months before
     NOW, written in SQL as the agents' page would leave it (agents, a Contact + Disposition per call,
     outcomes, reasons, callbacks and the calls that kept them, coupons, some redeemed, won cases), so the
     agent and reasons tables of the KPI page have work to do; VACUUM ANALYZE;
  1. the floor: one hand-written SELECT on winback_lifecycleevent returning CS, L0 and L0/CS for the 36
     months (docs/metrics.md s.2-3), best of 2; checked equal to what metrics_compute produced for those months;
  2. `metrics_refresh(periods=recent_months(months=36))`, best of 2, with the time per SQL statement;
  3. the KPI page (GET /admin/metrics/metricsnapshot/?month=<last complete month>) through Django's test
     Client in this process (a manager logged in with force_login; no HTTP server, no network): 2 warm-ups,
     then --requests timed GETs, p50/p95; then its parts timed one by one (kpis_for_period x2, series_for x6,
     cohort_retention, reasons_table, agent_table) and the queries one page sends;
  4. machine and software, and the command to reproduce.
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
            # By the tables read (the refresh's own temp tables included): its order sums (crm_order, m_rev,
            # m_first), its lifecycle counts (m_changes), the program tables, the rest (snapshot rows, settings).
            kind = ("orders" if any(t in sql for t in ("crm_order", "m_rev", "m_first")) else
                    "lifecycle" if "m_changes" in sql else
                    "program" if any(t in sql for t in ("winback_winbackcase", "winback_coupon", "crm_feedback")) else
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


# --- Main ------------------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--calls-per-month", type=int, help="agent calls per month (default: customers / 40)")
    parser.add_argument("--requests", type=int, default=30, help="timed GETs of the KPI page")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument("--reuse", action="store_true", help="reuse the bench database if it holds this data")
    args = parser.parse_args()
    calls_per_month = args.calls_per_month if args.calls_per_month is not None else args.customers // 40

    import psycopg

    url, bench_db, bench_url, admin_url = database_urls(name=f"bench_metrics_{args.customers}_{args.orders}")
    os.environ.setdefault("VAR_DIR", tempfile.mkdtemp(prefix="bench-metrics-var-"))
    os.environ.update({"DATABASE_URL": bench_url, "DJANGO_SETTINGS_MODULE": "config.settings", "PYTHONUNBUFFERED": "1"})
    reproduce = (f"cd {ROOT} && VAR_DIR={os.environ['VAR_DIR']} DATABASE_URL={url} timeout 3600 .venv/bin/python"
                 f" bench/metrics.py " + shlex.join(sys.argv[1:]))

    print("metrics bench: 36 monthly snapshots against a hand-written floor, and the KPI page")
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
        from metrics.services.snapshots import metrics_refresh, recent_months
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
            events = dict(conn.execute("SELECT kind, count(*) FROM winback_lifecycleevent GROUP BY kind").fetchall())
        print(f"   events {sum(events.values()):,} ({', '.join(f'{k} {v:,}' for k, v in sorted(events.items()))})")

        # 1. The floor.
        periods = recent_months(months=MONTHS)
        first, last = periods[0].bounds()[0], periods[-1].bounds()[0]
        floor_sql = FLOOR_SQL.format(precedence=PRECEDENCE_SQL)
        with psycopg.connect(bench_url, autocommit=True) as conn:
            conn.execute("SELECT set_config('TimeZone', %s, false)", [settings.TIME_ZONE])
            floor_s, floor_runs, floor_rows = best_of(2, lambda: conn.execute(
                floor_sql, {"first": first, "last": last}).fetchall())
        floor = {Period(m.astimezone(first.tzinfo).date(), add_months(m.astimezone(first.tzinfo).date(), 1)): (cs, l0)
                 for m, cs, l0, _ in floor_rows}
        print(f"1. floor: one SELECT on winback_lifecycleevent, {len(floor_rows)} monthly churn rows"
              f" ({periods[0]} .. {periods[-1]}): best of 2 {floor_s:.2f}s (runs {', '.join(f'{r:.2f}' for r in floor_runs)})")
        for i in range(0, len(floor_rows), 4):
            print("   " + "   ".join(f"{m.astimezone(first.tzinfo):%Y-%m} {l0:>7,}/{cs:>9,} {100 * float(r or 0):5.2f}%"
                                     for m, cs, l0, r in floor_rows[i:i + 4]))

        # 2. metrics_refresh, with what metrics_compute returned captured for the check.
        computed: list[dict] = []
        real_compute = snapshots_module.metrics_compute

        def capturing_compute(*, periods, **kwargs):
            out = real_compute(periods=periods, **kwargs)
            computed.append(out)
            return out

        snapshots_module.metrics_compute = capturing_compute
        timers: list[StatementTimer] = []

        def refresh():
            timers.append(StatementTimer())
            with connection.execute_wrapper(timers[-1]):
                return metrics_refresh(periods=recent_months(months=MONTHS))

        try:
            refresh_s, refresh_runs, rows_written = best_of(2, refresh)
        finally:
            snapshots_module.metrics_compute = real_compute
        best_run = refresh_runs.index(refresh_s)
        print(f"2. metrics_refresh(periods=recent_months(months=36)): best of 2 {refresh_s:.2f}s"
              f" (runs {', '.join(f'{r:.2f}' for r in refresh_runs)}), {rows_written:,} snapshot rows;"
              f" ratio to the floor {refresh_s / floor_s:.1f}x (target <= 2)")
        for line in timers[best_run].table(refresh_s):
            print("   " + line)
        groups = timers[best_run].groups()
        print(f"   by what it reads: lifecycle counts and cohort cells on m_changes (its build, CS..CE, R, RP, tenure)"
              f" {groups['lifecycle']:.2f}s ({groups['lifecycle'] / floor_s:.1f}x the floor); order sums (crm_order and"
              f" the m_rev/m_first tables built from it: revenue, buyers, repeat buyers, revenue churn)"
              f" {groups['orders']:.2f}s; cases, coupons, feedback {groups['program']:.2f}s; other SQL (snapshot rows,"
              f" settings) {groups['rest']:.2f}s; Python {refresh_s - sum(groups.values()):.2f}s")
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
        print(f"   check: churn (CS, L0, L0/CS) of metrics_compute == floor for"
              f" {len(periods) - len(mismatches)}/{len(periods)} months" + (": " + "; ".join(mismatches[:5]) if mismatches else ""))

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
        print(f"  floor: one SELECT, 36 monthly churn rows (best of 2)    {floor_s:9.2f} s")
        print(f"  metrics_refresh(recent_months(36)) (best of 2)          {refresh_s:9.2f} s")
        print(f"  ratio refresh / floor                                   {refresh_s / floor_s:9.1f} x   (target <= 2)")
        print(f"  churn check metrics_compute vs floor                    {len(periods) - len(mismatches):>6}/{len(periods)} months equal")
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
