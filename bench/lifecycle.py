"""The lifecycle engine at scale: a full scan (inline, on 1 and on 2 worker processes) and an incremental one
beside the set-based floor and an ORM loop.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test REDIS_URL=redis://127.0.0.1:6379/15 \
        .venv/bin/python bench/lifecycle.py [--customers 1000000] [--orders 10000000] [--keep] [--reuse]

PostgreSQL only. It works in its own database (`<name>_bench_lifecycle`, created and migrated afresh; with
--reuse an existing one holding the same data is reset to the freshly built state instead, which saves the
build), with a fixed "now" (NOW below) and fixed seeds, and measures in one run:
  1. the build: N customers with their own purchase rhythm and M orders over the 3 years before NOW, all
     set-based SQL (generate_series, setseed); customers are written once with the figures the order
     services would leave (status 'active', order_count, total_spent, last_order_at, acquired_at,
     history_version 1); orders are written in time order (as they would have arrived), so a customer's
     orders are spread over the whole table, as in production;
  2. the floor (issue 18): the scan's output written set-based in three statements, best of 2, each run from
     empty copies made with CREATE TABLE ... (LIKE ... INCLUDING ALL) (so with the indexes, without foreign
     keys): (1) INSERT ... SELECT of every event, computed by the engine's own window-function statement
     (lifecycle_sql.EVENTS_SQL) for all customers at once, into a copy of the events table (its due instants,
     the next crossings, into a temporary table on the way); (2) one UPDATE ... FROM of every customer's
     status, lifecycle_version and lifecycle_due_at, on a copy of crm_customer (so the real one stays as
     built); (3) one INSERT ... SELECT of the open cases into a copy of the cases table. Its event counts
     per kind and its open cases must equal every full scan's;
  3. `lifecycle_scan(full=True, now=NOW)` inline in a child process: wall time, the child's own peak RSS
     (ru_maxrss read inside it), the ScanResult, the time of every SQL statement it sent and of every
     COMMIT (deferred foreign-key checks run there), and the plans the slow ones ran with (auto_explain
     without ANALYZE, so no overhead; in /tmp/bench_lifecycle_plans_*.txt);
  4. 1% of the customers get one new order each (as the crm services record it: history_version + 1),
     then `lifecycle_scan(full=False, now=NOW + 1 hour)` in a child process;
  5. a per-customer ORM loop (orders through the ORM, lifecycle_rules.lifecycle_compute, get_or_create per
     event, customer.save()) on a random 10,000 customers whose events were removed first, inside a
     transaction that is rolled back; scaled linearly to N;
  6. diagnostics: one batch of the full scan re-run in a rolled-back transaction with every statement under
     EXPLAIN (ANALYZE, BUFFERS) (plans also written to /tmp/bench_lifecycle_explain.txt);
  7. the full scan on real Celery workers (core.worker_process.worker_spawn, --redis-url, default REDIS_URL or
     redis://127.0.0.1:6379/15): `lifecycle_scan_start(full=True, now=NOW)` + `batch_run_wait` with 1 and
     then 2 worker processes, each from the freshly built state (reset as --reuse does); the run's span
     (created .. finished) and the worker processes' peak RSS;
and prints the figures in one block at the end, each with its ratio and the issue's target.

Children re-invoke this file (`--child scan|orm|explain|floor|workers`) with DATABASE_URL pointing at the bench
database; each reports a hash of the engine's files, and the run says so if the engine changed while it ran.
"""

import sys
from pathlib import Path

# Run as `python bench/lifecycle.py`, Python puts bench/ first on sys.path, where a sibling bench's name
# (bench/queue.py) shadows a standard module that psycopg and Django import: use the project root instead.
ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import datetime as dt  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from bench.scratch_db import database_urls  # noqa: E402
from bench.seeding import MARK, child_run, customer_extra_columns, orders_without_indexes  # noqa: E402
from core.worker_process import WORKER_OPTIONS, worker_spawn, worker_stop  # noqa: E402

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
INCREMENTAL_NOW = NOW + dt.timedelta(hours=1)
SPAN_S = 3 * 365 * 86400  # orders fall in [NOW - 3 years, NOW)
SEED = 0.42
EXPLAIN_FILE = Path("/tmp/bench_lifecycle_explain.txt")
# The targets: a full scan within 2x the floor, an incremental one after 1% of the customers ordered
# within 3% of the full scan, the ORM loop at least 100x the full scan.
FULL_TARGET = 2.0
INCREMENTAL_TARGET = 0.03
ORM_TARGET = 100.0

# Customer rhythms: share, mean gap in days (each customer draws 0.75..1.25 of it), raw order count
# (2 + uniform 0..spread, then scaled so that the total is exactly M), basket range.
#   0 one-time   35%   -      1            20..200
#   1 weekly     10%   7      2..77        15..60
#   2 monthly    25%   30.4   2..22        30..120
#   3 quarterly  15%   91     2..10        60..300
#   4 irregular  15%   45     2..18        20..250  (order times uniform over the customer's active span)
# The engine's code: every child reports the hash it ran with, so a change made mid-run is seen.
ENGINE_FILES = ["winback/services/lifecycle.py", "winback/services/lifecycle_sql.py", "winback/services/lifecycle_rules.py",
                "winback/services/policy.py", "winback/services/cases.py", "winback/sql.py", "winback/models.py",
                "crm/services/customers.py", "crm/sql.py", "crm/models.py", "core/batches.py"]
SEGMENTS = ["one-time", "weekly", "monthly", "quarterly", "irregular"]

PLAN_SQL = """
CREATE UNLOGGED TABLE bench_plan AS
SELECT g, seg,
       CASE seg WHEN 1 THEN 7 WHEN 2 THEN 30.4 WHEN 3 THEN 91 WHEN 4 THEN 45 ELSE 0 END
           * 86400 * (0.75 + 0.5 * r1) AS gap_s,
       (CASE seg WHEN 0 THEN 1 WHEN 1 THEN 2 + floor(r2 * 76) WHEN 2 THEN 2 + floor(r2 * 21)
                 WHEN 3 THEN 2 + floor(r2 * 9) ELSE 2 + floor(r2 * 17) END)::bigint AS w
FROM (SELECT g, CASE WHEN r < 0.35 THEN 0 WHEN r < 0.45 THEN 1 WHEN r < 0.70 THEN 2 WHEN r < 0.85 THEN 3
                     ELSE 4 END AS seg, r1, r2
      FROM (SELECT g, random() AS r, random() AS r1, random() AS r2
            FROM generate_series(1, %(n)s) g) a) b
"""

# Exactly M orders: one-time buyers keep 1, every other customer 2 plus its share of the rest, by
# cumulative floors of its weight (w - 2). The gap is shrunk when the orders would not fit in 3 years;
# the first order falls where the whole history (plus the jitter of the last order) fits before NOW.
PLAN2_SQL = """
CREATE UNLOGGED TABLE bench_plan2 AS
SELECT g, seg, n, gap_s, span_s,
       %(start)s::timestamptz + random() * (%(h)s - span_s - 0.3 * gap_s) * interval '1 second' AS t0
FROM (SELECT g, seg, n, gap_s, (n - 1) * gap_s AS span_s
      FROM (SELECT g, seg, n, CASE WHEN n > 1 THEN least(gap_s, %(h)s * 0.95 / (n - 0.7)) ELSE 0 END AS gap_s
            FROM (SELECT g, seg, gap_s,
                         CASE WHEN seg = 0 THEN 1
                              ELSE 2 + cum * %(x)s::bigint / %(wsum)s::bigint
                                     - (cum - (w - 2)) * %(x)s::bigint / %(wsum)s::bigint END AS n
                  FROM (SELECT g, seg, gap_s, w,
                               (sum(CASE WHEN seg = 0 THEN 0 ELSE w - 2 END) OVER (ORDER BY g))::bigint AS cum
                        FROM bench_plan) a) b) c) d
ORDER BY g
"""

ORDERS_SQL = """
CREATE UNLOGGED TABLE bench_orders AS
SELECT p.g,
       CASE WHEN j = 1 THEN p.t0
            WHEN p.seg = 4 THEN p.t0 + random() * p.span_s * interval '1 second'
            ELSE p.t0 + ((j - 1) + 0.6 * (random() - 0.5)) * p.gap_s * interval '1 second' END AS t,
       round((CASE p.seg WHEN 0 THEN 20 + 180 * random() WHEN 1 THEN 15 + 45 * random()
                         WHEN 2 THEN 30 + 90 * random() WHEN 3 THEN 60 + 240 * random()
                         ELSE 20 + 230 * random() END)::numeric, 2) AS amount
FROM bench_plan2 p CROSS JOIN LATERAL generate_series(1, p.n::int) j
"""

CUSTOMERS_SQL = """
INSERT INTO crm_customer (external_id, name, email, phone, timezone, locale, acquired_at, status, email_consent,
                          email_consent_source, last_order_at, order_count, total_spent, history_version,
                          lifecycle_version, created_at, updated_at{more_columns})
SELECT 'C' || lpad(g::text, 8, '0'), 'Customer ' || g, '', '', '', 'en', mn, 'active', 'unknown', '', mx, n, s,
       1, 0, now(), now(){more_values}
FROM (SELECT g, min(t) AS mn, max(t) AS mx, count(*) AS n, sum(amount) AS s FROM bench_orders GROUP BY g) a
ORDER BY mn, g
"""

CUSTOMER_COLUMNS = ["id", "external_id", "name", "email", "phone", "timezone", "locale", "acquired_at", "status",
                    "email_consent", "email_consent_source", "last_order_at", "order_count", "total_spent",
                    "history_version", "lifecycle_version", "created_at", "updated_at"]

LOAD_ORDERS_SQL = """
INSERT INTO crm_order (external_id, customer_id, ordered_at, amount, currency, coupon_code, created_at)
SELECT 'O' || lpad((row_number() OVER (ORDER BY o.t, o.g))::text, 10, '0'), m.id, o.t, o.amount, 'EUR', '', now()
FROM bench_orders o JOIN bench_map m ON m.g = o.g
ORDER BY o.t, o.g
"""

# The floor (the issue's): the lifecycle's output written set-based, in three statements, into empty copies
# of the tables with their indexes (CREATE TABLE ... (LIKE ... INCLUDING ALL); the copies have no foreign
# keys). The events come from the engine's own window-function statement (lifecycle_sql.EVENTS_SQL) rendered
# for every customer at once; its due instants (the next crossings) go to a temporary table on the way, as
# the engine's do, since the customers' UPDATE needs them.
FLOOR_SETUP = [
    "DROP TABLE IF EXISTS floor_events, floor_customer, floor_cases",
    "DROP TABLE IF EXISTS floor_due",
    "CREATE TABLE floor_events (LIKE {event} INCLUDING ALL)",
    "CREATE TABLE floor_cases (LIKE {case} INCLUDING ALL)",
    "CREATE TABLE floor_customer (LIKE {customer} INCLUDING ALL)",
    "INSERT INTO floor_customer SELECT * FROM {customer}",
    "VACUUM ANALYZE floor_customer",
    "CREATE TEMP TABLE floor_due (customer_id bigint NOT NULL, due_at timestamptz NOT NULL)",
    "CHECKPOINT",
]
FLOOR_EVENTS = """
WITH raw AS MATERIALIZED ({events_sql}),
ev AS (INSERT INTO floor_events (customer_id, kind, occurred_at, created_at)
       SELECT customer_id, kind, at, %(now)s FROM raw WHERE kind NOT LIKE 'due%%')
INSERT INTO floor_due (customer_id, due_at) SELECT customer_id, min(at) FROM raw WHERE kind LIKE 'due%%' GROUP BY customer_id
"""
# Every customer's status (its latest event; at the same instant the later stage wins; at risk ends with a
# later order), the version computed and the next crossing. (The bench's customers all have orders, so all
# have events.)
FLOOR_CUSTOMERS = """
UPDATE floor_customer c SET status = x.status, lifecycle_version = c.history_version, lifecycle_due_at = x.due_at
FROM (SELECT l.customer_id, d.due_at,
             CASE WHEN last_kind = 'at_risk' AND EXISTS (SELECT 1 FROM {order} o WHERE o.customer_id = l.customer_id
                                                            AND o.ordered_at > l.occurred_at)
                  THEN 'active' ELSE {status_sql} END AS status
      FROM (SELECT DISTINCT ON (customer_id) customer_id, kind AS last_kind, occurred_at FROM floor_events
            ORDER BY customer_id, occurred_at DESC, {precedence_sql} DESC) l
      LEFT JOIN floor_due d ON d.customer_id = l.customer_id) x
WHERE c.id = x.customer_id
"""
# One open case per customer whose latest event is a lapse or a cancellation, with the engine's figures
# (recovery flag, revenue of the 12 months before the lapse, prediction, priority, holdout draw).
FLOOR_CASES = """
INSERT INTO floor_cases (customer_id, kind, lapse_event_id, lapsed_at, opened_at, status, holdout, ready, attempts,
                         awaiting_return, is_recovery, revenue_12m, predicted_value, priority, close_reason,
                         created_at, updated_at)
SELECT customer_id, 'winback', event_id, lapsed_at, %(now)s, 'open', holdout, NOT holdout, 0, false,
       is_recovery, revenue_12m, predicted_value, {priority_sql}, '', %(now)s, %(now)s
FROM (SELECT lost.*, random() < %(holdout)s AS holdout FROM (
    SELECT e.customer_id, e.id AS event_id, e.occurred_at AS lapsed_at,
           EXISTS (SELECT 1 FROM {complaint} k WHERE k.customer_id = e.customer_id AND k.status <> 'resolved') AS is_recovery,
           (SELECT COALESCE(sum(o.amount), 0) FROM {order} o
            WHERE o.customer_id = e.customer_id AND o.ordered_at > e.occurred_at - interval '365 days'
              AND o.ordered_at <= e.occurred_at) AS revenue_12m,
           (SELECT p.predicted_clv_12m FROM {prediction} p WHERE p.customer_id = e.customer_id) AS predicted_value
    FROM (SELECT DISTINCT ON (e.customer_id) e.id, e.customer_id, e.occurred_at
          FROM floor_customer c JOIN floor_events e ON e.customer_id = c.id AND e.kind = c.status
          WHERE c.status IN ('lapsed', 'cancelled')
          ORDER BY e.customer_id, e.occurred_at DESC) e
) lost) drawn
"""


# --- Parent --------------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--orm-customers", type=int, default=10_000)
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument("--reuse", action="store_true", help="reuse the bench database if it holds this data")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15"),
                        help="the broker of the worker runs (the bench purges its queue)")
    parser.add_argument("--child", choices=["scan", "orm", "explain", "floor", "workers"], help=argparse.SUPPRESS)
    parser.add_argument("--full", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--now", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child_main(args)

    import psycopg

    url, bench_db, bench_url, admin_url = database_urls(suffix="bench_lifecycle")
    env = {**os.environ, "DATABASE_URL": bench_url, "VAR_DIR": tempfile.mkdtemp(prefix="bench-var-"),
           "DJANGO_SETTINGS_MODULE": "config.settings", "PYTHONUNBUFFERED": "1"}
    n_customers, n_orders = args.customers, args.orders
    orm_n = min(args.orm_customers, n_customers)

    print(f"code: {code_version()}")
    try:
        reused = args.reuse and holds_data(psycopg, admin_url, bench_url, bench_db, n_customers, n_orders)
        if reused:
            subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
            t0 = time.perf_counter()
            with psycopg.connect(bench_url, autocommit=True) as conn:
                reset(conn)
            print(f"reused {bench_db}: reset to the freshly built state in {time.perf_counter() - t0:.1f}s")
            build_s = None
        else:
            with psycopg.connect(admin_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{bench_db}" WITH (FORCE)')
                admin.execute(f'CREATE DATABASE "{bench_db}"')
            subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
            t0 = time.perf_counter()
            with psycopg.connect(bench_url, autocommit=True) as conn:
                build(conn, n_customers, n_orders)
            build_s = time.perf_counter() - t0
            print(f"1. build: {n_customers:,} customers, {n_orders:,} orders in {build_s:.1f}s (set-based SQL,"
                  f" indexes rebuilt after the load, VACUUM ANALYZE included)")
        with psycopg.connect(bench_url, autocommit=True) as conn:
            describe(conn)

            # The rule the floor counts, and the engine's heaviest: the rhythm rule (a fresh install starts
            # with the window rule, winback/defaults.py).
            conn.execute("INSERT INTO winback_dormancypolicy (rule, k, at_risk_k, min_orders, default_days, min_days,"
                         " max_days, p_alive_min, holdout_share, attribution_window_days, created_at, note)"
                         " SELECT 'rhythm', k, at_risk_k, min_orders, default_days, min_days, max_days, p_alive_min,"
                         " holdout_share, attribution_window_days, now(), 'bench: the rhythm rule'"
                         " FROM (SELECT * FROM winback_dormancypolicy ORDER BY id DESC LIMIT 1) p WHERE p.rule <> 'rhythm'")

        # 2. The floor, in a child (it renders the engine's statement with the policy's parameters).
        floor = run_child(["--child", "floor", "--now", NOW.isoformat()], env)
        floor_s = floor["seconds"]
        print(f"2. floor: {floor_s:.2f}s (best of {len(floor['runs'])}: "
              + ", ".join(f"{sum(r.values()):.2f}s" for r in floor["runs"]) + "), of which "
              + ", ".join(f"{name} {took:.2f}s" for name, took in floor["best"].items()))
        print(f"   floor wrote: events {floor['events_total']:,}"
              f" ({', '.join(f'{k} {v:,}' for k, v in sorted(floor['events'].items()))}), next crossings"
              f" {floor['due']:,}, customers updated {floor['customers']:,}, open cases {floor['cases']:,}")

        # 3. The full scan.
        full = run_child(["--child", "scan", "--full", "--now", NOW.isoformat()], env)
        print(f"3. full scan: {full['seconds']:.1f}s in lifecycle_scan() ({full['wall']:.1f}s child wall),"
              f" peak RSS {full['rss_mb']:.0f} MB")
        print(f"   {full['summary']}")
        print(indent(statements_table(full["statements"], full["seconds"]), 3))
        print(indent(plan_shapes(full["plans"], "full"), 3))
        with psycopg.connect(bench_url, autocommit=True) as conn:
            events = dict(conn.execute("SELECT kind, count(*) FROM winback_lifecycleevent GROUP BY kind").fetchall())
            cases = dict(conn.execute("SELECT status, count(*) FROM winback_winbackcase GROUP BY status").fetchall())
            statuses = dict(conn.execute("SELECT status, count(*) FROM crm_customer GROUP BY status").fetchall())
        n_events, open_cases = sum(events.values()), cases.get("open", 0)
        print(f"   events {n_events:,} ({', '.join(f'{k} {v:,}' for k, v in sorted(events.items()))});"
              f" cases {', '.join(f'{k} {v:,}' for k, v in sorted(cases.items()))};"
              f" customers {', '.join(f'{k} {v:,}' for k, v in sorted(statuses.items()))}")
        same = "equal" if events == floor["events"] and open_cases == floor["cases"] else "DIFFERENT"
        print(f"   events per kind and open cases vs the floor's ({floor['events_total']:,} events,"
              f" {floor['cases']:,} open cases): {same}")
        if same != "equal":
            MISMATCH.append(f"inline full scan: events {events} / open cases {open_cases:,} vs the floor's"
                            f" {floor['events']} / {floor['cases']:,}")

        # 4. The incremental scan. The full scan rewrote every customer row; the hourly incremental scan finds
        # them vacuumed (autovacuum takes a table with 20% dead rows within its minute's nap), not with a
        # million dead entries in the "stale" and "due" indexes it looks customers up by.
        with psycopg.connect(bench_url, autocommit=True) as conn:
            t0 = time.perf_counter()
            conn.execute("VACUUM ANALYZE crm_customer, winback_lifecycleevent, winback_winbackcase, winback_caseevent")
            print(f"   VACUUM ANALYZE of the tables the full scan wrote, as autovacuum would before the next hourly"
                  f" scan: {time.perf_counter() - t0:.1f}s (not part of any figure)")
        with psycopg.connect(bench_url) as conn:
            touched = add_new_orders(conn, n_customers)
        print(f"4. added one order (NOW .. NOW + 50 min) to {touched:,} random customers (history_version + 1)")
        inc = run_child(["--child", "scan", "--now", INCREMENTAL_NOW.isoformat()], env)
        print(f"   incremental scan: {inc['seconds']:.2f}s in lifecycle_scan() ({inc['wall']:.1f}s child wall),"
              f" peak RSS {inc['rss_mb']:.0f} MB")
        print(f"   {inc['summary']}")
        print(indent(statements_table(inc["statements"], inc["seconds"]), 3))
        print(indent(plan_shapes(inc["plans"], "incremental"), 3))

        # 5. The ORM loop.
        orm = run_child(["--child", "orm", "--now", INCREMENTAL_NOW.isoformat(), "--orm-customers", str(orm_n)], env)
        orm_scaled = orm["seconds"] * n_customers / orm["customers"]
        print(f"5. ORM loop: {orm['customers']:,} customers, {orm['orders']:,} orders, {orm['events']:,} events"
              f" in {orm['seconds']:.1f}s ({orm['seconds'] / orm['customers'] * 1000:.2f} ms/customer,"
              f" {orm['queries']:,} queries); scaled to {n_customers:,}: {orm_scaled:,.0f}s; peak RSS {orm['rss_mb']:.0f} MB")

        # 6. Diagnostics: one batch of the full scan under EXPLAIN ANALYZE.
        diag = run_child(["--child", "explain", "--now", NOW.isoformat()], env)
        report_explain(diag)

        # 7. The full scan on real Celery workers: 1 process, then 2, each from the freshly built state.
        worker_env = {**env, "REDIS_URL": args.redis_url}
        on_workers: dict[int, dict] = {}
        for processes in (1, 2):
            with psycopg.connect(bench_url, autocommit=True) as conn:
                reset(conn)
            on_workers[processes] = full_scan_on_workers(processes, worker_env, floor)
            w = on_workers[processes]
            print(f"7. full scan on {processes} worker process{'es' if processes > 1 else ''}: {w['seconds']:.1f}s"
                  f" (run created .. finished; {w['wall']:.1f}s child wall), {w['parts']} batches;"
                  f" peak RSS of the worker processes {w['worker_rss_mb']:.0f} MB; {w['check']}")
            print(f"   {w['summary']}")

        rss = max(full["rss_mb"], inc["rss_mb"], *(w["worker_rss_mb"] for w in on_workers.values()))
        inc_share = inc["seconds"] / full["seconds"]
        orm_ratio = orm_scaled / full["seconds"]

        def verdict(ok: bool) -> str:
            return "ok" if ok else "MISSED"

        print()
        print("=" * 110)
        print(f"lifecycle bench: {n_customers:,} customers, {n_orders:,} orders, NOW {NOW:%Y-%m-%d %H:%M} UTC"
              f" ({'reused database' if reused else f'built in {build_s:.0f}s'})")
        floor_label = f"floor, best of {len(floor['runs'])} (three set-based statements)"
        print(f"  {floor_label:60} {floor_s:10.2f} s"
              f"   ({floor['events_total']:,} events, {floor['cases']:,} open cases)")
        for name, took in floor["best"].items():
            print(f"    {name:58} {took:10.2f} s")
        rows = [("full scan, inline  lifecycle_scan(full=True)", full["seconds"])]
        rows += [(f"full scan, {k} worker process{'es' if k > 1 else ''}", w["seconds"]) for k, w in on_workers.items()]
        for label, took in rows:
            ratio = took / floor_s
            print(f"  {label:60} {took:10.2f} s   {ratio:5.2f}x the floor (target <= {FULL_TARGET:g}x:"
                  f" {verdict(ratio <= FULL_TARGET)})")
        inc_label = f"incremental scan, inline ({touched:,} customers ordered)"
        print(f"  {inc_label:60} {inc['seconds']:10.2f} s   {100 * inc_share:5.2f}% of the inline full scan"
              f" (target <= {100 * INCREMENTAL_TARGET:g}%: {verdict(inc_share <= INCREMENTAL_TARGET)})")
        orm_label = f"ORM loop ({orm['seconds']:.1f}s on {orm['customers']:,} customers), scaled to N"
        print(f"  {orm_label:60} {orm_scaled:10.0f} s   {orm_ratio:5.0f}x the inline full scan (target >="
              f" {ORM_TARGET:g}x: {verdict(orm_ratio >= ORM_TARGET)}); "
              + ", ".join(f"{orm_scaled / w['seconds']:.0f}x the scan on {k} worker process{'es' if k > 1 else ''}"
                          for k, w in on_workers.items())
              + f", {orm_scaled / floor_s:.0f}x the floor")
        worker_rss = ", ".join(f"{k}: {w['worker_rss_mb']:.0f}" for k, w in on_workers.items())
        print(f"  peak RSS {rss:.0f} MB (inline full {full['rss_mb']:.0f}, incremental {inc['rss_mb']:.0f}, worker"
              f" processes {worker_rss}, ORM child {orm['rss_mb']:.0f})")
        print(f"  after the inline full scan: events {n_events:,}"
              f" (lapsed {events.get('lapsed', 0):,}, at_risk {events.get('at_risk', 0):,},"
              f" reactivated {events.get('reactivated', 0):,}, acquired {events.get('acquired', 0):,});"
              f" open cases {open_cases:,}; the floor's: events {floor['events_total']:,}, open cases {floor['cases']:,}")
        print(f"  full ScanResult: events +{full['result']['events_added']:,}, cases opened"
              f" {full['result']['cases_opened']:,}; incremental: events +{inc['result']['events_added']:,}"
              f"/-{inc['result']['events_removed']:,}, cases +{inc['result']['cases_opened']:,}"
              f" closed {inc['result']['cases_closed']:,}")
        for problem in MISMATCH:
            print(f"  DIFFERENT FROM THE FLOOR: {problem}")
        for warning in CHANGED:
            print(f"  NOT COMPARABLE: the engine changed during the run ({warning})")
        print("  (the machine's 2 cores may have been shared with other work during this run;"
              f" load average at the start {LOAD_AT_START}, at the end {load_average()})")
        print("=" * 110)
    finally:
        if not args.keep:
            with psycopg.connect(admin_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{bench_db}" WITH (FORCE)')


def engine_hash() -> str:
    digest = hashlib.sha1()
    for name in ENGINE_FILES:
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()[:10]


def code_version() -> str:
    """The commit measured, and whether the engine's files differ from it (read-only git)."""
    def git(*argv: str) -> str:
        proc = subprocess.run(["git", *argv], cwd=ROOT, capture_output=True, text=True)
        return proc.stdout.strip() if proc.returncode == 0 else "?"
    dirty = git("status", "--porcelain", "--", *ENGINE_FILES)
    return (f"{git('rev-parse', '--short', 'HEAD')}" + (f" (uncommitted: {' '.join(dirty.split()[1::2])})" if dirty else "")
            + f", engine files {engine_hash()}")


def holds_data(psycopg, admin_url: str, bench_url: str, bench_db: str, customers: int, orders: int) -> bool:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [bench_db]).fetchone():
            return False
    with psycopg.connect(bench_url, autocommit=True) as conn:
        if conn.execute("SELECT to_regclass('bench_lifecycle_meta')").fetchone()[0] is None:
            return False
        row = conn.execute("SELECT customers, orders FROM bench_lifecycle_meta").fetchone()
    return row == (customers, orders)


def build(conn, customers: int, orders: int) -> None:
    """The data set, set-based: a plan per customer, the orders in a staging table, then the real tables."""
    for setting in ("work_mem = '1GB'", "maintenance_work_mem = '1GB'", "synchronous_commit = off",
                    "max_parallel_workers_per_gather = 0", "TIME ZONE 'UTC'"):  # serial: random() stays seeded
        conn.execute(f"SET {setting}")
    steps: list[tuple[str, float]] = []

    def step(label: str, sql: str, params: dict | None = None) -> None:
        t0 = time.perf_counter()
        conn.execute(sql, params or {})
        steps.append((label, time.perf_counter() - t0))

    conn.execute("SELECT setseed(%s)", [SEED])
    step("plan", PLAN_SQL, {"n": customers})
    once, repeat, wsum = conn.execute(
        "SELECT count(*) FILTER (WHERE seg = 0), count(*) FILTER (WHERE seg <> 0),"
        " coalesce(sum(w - 2) FILTER (WHERE seg <> 0), 0) FROM bench_plan").fetchone()
    extra = orders - once - 2 * repeat
    if extra < 0 or (extra > 0 and wsum == 0):
        sys.exit(f"--orders must be at least {once + 2 * repeat:,} for {customers:,} customers")
    step("plan2", PLAN2_SQL, {"x": extra, "wsum": max(int(wsum), 1), "h": SPAN_S,
                              "start": NOW - dt.timedelta(seconds=SPAN_S)})
    step("staging orders", ORDERS_SQL)
    step("customers", CUSTOMERS_SQL.format(**customer_extra_columns(conn, known=CUSTOMER_COLUMNS)))
    step("map", "CREATE UNLOGGED TABLE bench_map AS SELECT id, substr(external_id, 2)::int AS g FROM crm_customer")
    with orders_without_indexes(conn, steps=steps, label="order indexes"):
        step("orders", LOAD_ORDERS_SQL)
    segs = conn.execute("SELECT seg, count(*), sum(n) FROM bench_plan2 GROUP BY seg ORDER BY seg").fetchall()
    conn.execute("DROP TABLE bench_plan, bench_plan2, bench_orders, bench_map")
    conn.execute("CREATE TABLE bench_lifecycle_meta AS SELECT %s::int AS customers, %s::bigint AS orders, now() AS built_at",
                 [customers, orders])
    # Only the loaded tables: the lifecycle tables stay as a fresh install has them (empty, never analysed).
    step("vacuum analyze", "VACUUM ANALYZE crm_customer, crm_order")
    conn.execute("CHECKPOINT")
    print("   build steps: " + ", ".join(f"{label} {s:.1f}s" for label, s in steps))
    print("   rhythms: " + ", ".join(f"{SEGMENTS[s]} {c:,} customers/{o:,} orders" for s, c, o in segs))


def reset(conn) -> None:
    """Back to the freshly built state: no lifecycle output, no bench-added orders, compact customers."""
    # CASCADE: whatever hangs off cases and coupons (newer tables) is lifecycle output too.
    conn.execute("TRUNCATE winback_coupon, winback_winbackcase, winback_lifecycleevent, winback_lifecyclescanstate,"
                 " core_batchrunpart, core_batchrun CASCADE")
    with conn.transaction():
        conn.execute("CREATE TEMP TABLE bench_touched AS SELECT DISTINCT customer_id AS id FROM crm_order"
                     " WHERE external_id LIKE 'N%'")
        conn.execute("DELETE FROM crm_order WHERE external_id LIKE 'N%'")
        conn.execute("""
            UPDATE crm_customer c SET order_count = a.n, total_spent = a.s, last_order_at = a.mx, history_version = 1
            FROM (SELECT customer_id, count(*) AS n, sum(amount) AS s, max(ordered_at) AS mx FROM crm_order
                  WHERE customer_id IN (SELECT id FROM bench_touched) GROUP BY customer_id) a
            WHERE c.id = a.customer_id""")
        conn.execute("DROP TABLE bench_touched")
        conn.execute("UPDATE crm_customer SET status = 'active', lifecycle_version = 0, lifecycle_due_at = NULL"
                     " WHERE status <> 'active' OR lifecycle_version <> 0 OR lifecycle_due_at IS NOT NULL")
    conn.execute("VACUUM FULL crm_customer")
    conn.execute("VACUUM ANALYZE crm_customer, crm_order")  # TRUNCATE left the lifecycle tables never analysed
    conn.execute("CHECKPOINT")


def describe(conn) -> None:
    row = conn.execute("""
        SELECT count(*), sum(order_count), count(*) FILTER (WHERE order_count = 1),
               percentile_disc(0.5) WITHIN GROUP (ORDER BY order_count), max(order_count),
               min(acquired_at), max(last_order_at)
        FROM crm_customer""").fetchone()
    sizes = conn.execute("SELECT pg_size_pretty(pg_table_size('crm_order')), pg_size_pretty(pg_indexes_size('crm_order')),"
                         " pg_size_pretty(pg_total_relation_size('crm_customer'))").fetchone()
    print(f"   data: {row[0]:,} customers, {row[1]:,} orders ({row[2]:,} one-order customers, median {row[3]},"
          f" max {row[4]} orders per customer), orders {row[5]:%Y-%m-%d} .. {row[6]:%Y-%m-%d %H:%M};"
          f" crm_order {sizes[0]} + indexes {sizes[1]}, crm_customer {sizes[2]}")


def add_new_orders(conn, customers: int) -> int:
    """1% of the customers (a seeded random sample) order once more, recorded as the crm services do."""
    with conn.transaction():
        conn.execute("SELECT setseed(%s)", [SEED + 0.01])
        conn.execute("CREATE TEMP TABLE bench_sample AS SELECT id FROM (SELECT id, random() AS r FROM"
                     " (SELECT id FROM crm_customer ORDER BY id) a) b ORDER BY r LIMIT %s", [max(1, customers // 100)])
        conn.execute("CREATE TEMP TABLE bench_new AS SELECT id AS customer_id,"
                     " %s::timestamptz + random() * interval '50 minutes' AS t,"
                     " round((20 + 100 * random())::numeric, 2) AS amount FROM (SELECT id FROM bench_sample ORDER BY id) s",
                     [NOW])
        conn.execute("INSERT INTO crm_order (external_id, customer_id, ordered_at, amount, currency, coupon_code, created_at)"
                     " SELECT 'N' || lpad(customer_id::text, 10, '0'), customer_id, t, amount, 'EUR', '', now()"
                     " FROM bench_new ORDER BY t")
        cur = conn.execute("""
            UPDATE crm_customer c SET order_count = c.order_count + 1, total_spent = c.total_spent + n.amount,
                last_order_at = GREATEST(c.last_order_at, n.t), acquired_at = LEAST(c.acquired_at, n.t),
                history_version = c.history_version + 1, updated_at = now()
            FROM bench_new n WHERE c.id = n.customer_id""")
        touched = cur.rowcount
        conn.execute("DROP TABLE bench_sample, bench_new")
    return touched


def explain(conn, sql: str, params: dict) -> str:
    return "\n".join(r[0] for r in conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params).fetchall())


def run_child(argv: list[str], env: dict[str, str]) -> dict:
    out = child_run(Path(__file__).resolve(), argv, env, cwd=ROOT)
    if out["engine"] != ENGINE_AT_START:
        CHANGED.append(f"{argv[1]} ran with engine files {out['engine']}, the run started with {ENGINE_AT_START}")
        print(f"   WARNING: the engine's files changed during the run: {CHANGED[-1]}")
    return out


ENGINE_AT_START = engine_hash()
CHANGED: list[str] = []
MISMATCH: list[str] = []


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


LOAD_AT_START = load_average()


def full_scan_on_workers(processes: int, env: dict[str, str], floor: dict) -> dict:
    """lifecycle_scan_start(full=True) + batch_run_wait in a child, on a real Celery worker of ``processes``
    pool processes; the output compared with the floor's."""
    import psycopg

    # Messages an earlier run left in the bench's Redis database would reach this worker first.
    subprocess.run([sys.executable, "-m", "celery", "-A", "config", "purge", "-f"], cwd=ROOT, env=env, check=True,
                   capture_output=True)
    worker = worker_spawn(
        argv=[sys.executable, "-m", "celery", "-A", "config", "worker", *WORKER_OPTIONS, "--concurrency", str(processes),
              "-n", f"bench-lifecycle-{processes}-{os.getpid()}@%h"],
        env=env, cwd=ROOT, log_path=Path(env["VAR_DIR"]) / f"worker-{processes}.log")
    try:
        out = run_child(["--child", "workers", "--now", NOW.isoformat()], env)
        out["worker_rss_mb"] = max([peak_rss_mb(pid) for pid in [worker.pid, *children_of(worker.pid)]] or [0.0])
    finally:
        worker_stop(worker)
    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
        events = dict(conn.execute("SELECT kind, count(*) FROM winback_lifecycleevent GROUP BY kind").fetchall())
        open_cases = conn.execute("SELECT count(*) FROM winback_winbackcase WHERE status = 'open'").fetchone()[0]
    if events == floor["events"] and open_cases == floor["cases"]:
        out["check"] = f"events ({sum(events.values()):,}) and open cases ({open_cases:,}) equal the floor's"
    else:
        out["check"] = f"DIFFERENT from the floor: events {events}, open cases {open_cases:,}"
        MISMATCH.append(f"{processes} worker process(es): events {events} / open cases {open_cases:,}")
    return out


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def peak_rss_mb(pid: int) -> float:
    """A live process's peak resident set (VmHWM), in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def statements_table(stats: list[dict], total: float, top: int = 14) -> str:
    timed = sum(s["seconds"] for s in stats)
    lines = [f"time per statement ({len(stats)} distinct, {sum(s['calls'] for s in stats):,} executions,"
             f" {timed:.1f}s of {total:.1f}s in SQL incl. COMMIT):"]
    for s in sorted(stats, key=lambda s: -s["seconds"])[:top]:
        lines.append(f"  {s['seconds']:8.2f}s {100 * s['seconds'] / total:5.1f}%  x{s['calls']:<3} max {s['max']:6.2f}s"
                     f"  rows {s['rows']:>10,}  {s['sql'][:110]}")
    return "\n".join(lines)


SHAPE = re.compile(r"^(\s*(?:->\s*)?)(.*?)\s+\(cost=.*$")


def plan_shapes(plans: list[dict], label: str) -> str:
    """The plan each slow statement ran with (node lines only, estimates dropped); full text in /tmp."""
    path = Path(f"/tmp/bench_lifecycle_plans_{label}.txt")
    with open(path, "w") as f:
        for p in sorted(plans, key=lambda p: -p["max_ms"]):
            f.write(f"-- slowest {p['max_ms'] / 1000:.2f}s, {p['count']} over the threshold: {p['sql']}\n{p['plan']}\n\n")
    lines = [f"plans chosen in this run (auto_explain, no ANALYZE; estimates dropped; full text in {path}):"]
    for p in sorted(plans, key=lambda p: -p["max_ms"])[:6]:
        lines.append(f"  slowest {p['max_ms'] / 1000:.2f}s (x{p['count']} over the threshold): {p['sql'][:110]}")
        for line in p["plan"].splitlines():
            m = SHAPE.match(line)
            if m and "CTE" not in m.group(2)[:4]:
                lines.append("      " + m.group(1) + m.group(2))
    return "\n".join(lines)


def report_explain(diag: dict) -> None:
    plans = sorted(diag["plans"], key=lambda p: -p["seconds"])
    total = sum(p["seconds"] for p in plans)
    with open(EXPLAIN_FILE, "w") as f:
        for p in plans:
            f.write(f"-- {p['seconds']:.3f}s  {p['sql']}\n{p['plan']}\n\n")
    print(f"6. diagnostics: one full-scan batch ({diag['scope']}, {diag['customers']:,} customers) re-run from an"
          f" empty lifecycle under EXPLAIN (ANALYZE, BUFFERS), rolled back: {total:.1f}s in SQL"
          f" (instrumented; all plans in {EXPLAIN_FILE})")
    for p in plans:
        if p["seconds"] >= 0.05 * total:
            print(indent(f"{p['seconds']:.2f}s {100 * p['seconds'] / total:.0f}%  {p['sql'][:140]}\n{p['plan']}", 3))
        else:
            print(f"   {p['seconds']:.2f}s {100 * p['seconds'] / total:.0f}%  {p['sql'][:140]}")


def indent(text: str, n: int) -> str:
    return "\n".join(" " * n + line for line in text.splitlines())


# --- Children (Django) -----------------------------------------------------------------------------------

engine_hash_at_import = ""


def child_main(args: argparse.Namespace) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    global engine_hash_at_import
    engine_hash_at_import = engine_hash()
    django.setup()
    now = dt.datetime.fromisoformat(args.now)
    out = {"scan": child_scan, "orm": child_orm, "explain": child_explain, "floor": child_floor,
           "workers": child_workers}[args.child](args, now)
    out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["engine"] = engine_hash_at_import
    print(MARK + json.dumps(out, default=str))


def _key(sql: str) -> str:
    return " ".join(sql.split())


class StatementTimer:
    def __init__(self) -> None:
        self.stats: dict[str, list] = {}

    def __call__(self, execute, sql, params, many, context):
        t0 = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.add(_key(sql), time.perf_counter() - t0, context["cursor"].rowcount or 0)

    def add(self, key: str, elapsed: float, rows: int) -> None:
        s = self.stats.setdefault(key, [0, 0.0, 0, 0.0])
        s[0] += 1
        s[1] += elapsed
        s[2] += max(rows, 0)
        s[3] = max(s[3], elapsed)

    def time_commits(self, connection) -> None:
        """COMMIT does not go through execute(); the deferred foreign-key checks of a batch run there."""
        commit = connection._commit

        def timed_commit():
            t0 = time.perf_counter()
            try:
                return commit()
            finally:
                self.add("COMMIT (the batch's deferred foreign-key checks run here)", time.perf_counter() - t0, 0)

        connection._commit = timed_commit

    def report(self) -> list[dict]:
        return [{"sql": k, "calls": c, "seconds": t, "rows": r, "max": m} for k, (c, t, r, m) in self.stats.items()]


def child_scan(args: argparse.Namespace, now: dt.datetime) -> dict:
    from django.db import connection

    from winback.services.lifecycle import lifecycle_scan

    # The plans the server actually chose, for statements over the threshold: auto_explain without ANALYZE
    # (no per-node instrumentation, so no overhead), sent back to us as NOTICEs.
    plans: dict[str, dict] = {}

    def on_notice(diag) -> None:
        text = diag.message_primary or ""
        m = re.match(r"duration: ([\d.]+) ms\s+plan:\s*Query Text: (.*?)\n(\S.*)$", text, re.S)
        if m:
            key, ms = _key(m.group(2)), float(m.group(1))
            seen = plans.setdefault(key, {"sql": key, "count": 0, "max_ms": 0.0, "plan": ""})
            seen["count"] += 1
            if ms > seen["max_ms"]:
                seen["max_ms"], seen["plan"] = ms, m.group(3)

    connection.ensure_connection()
    connection.connection.add_notice_handler(on_notice)
    with connection.cursor() as cur:
        cur.execute("LOAD 'auto_explain'")
        for setting in (f"auto_explain.log_min_duration = {500 if args.full else 20}", "auto_explain.log_analyze = off",
                        "auto_explain.log_level = notice"):
            cur.execute(f"SET {setting}")
    timer = StatementTimer()
    timer.time_commits(connection)
    t0 = time.perf_counter()
    with connection.execute_wrapper(timer):
        result = lifecycle_scan(full=args.full, now=now)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "summary": result.summary(), "result": dataclasses.asdict(result),
            "statements": timer.report(), "plans": list(plans.values())}


def child_floor(args: argparse.Namespace, now: dt.datetime) -> dict:
    """The floor's three statements, each run twice from empty copies; the faster run's times."""
    from django.db import connection

    from crm.models import Cancellation, Complaint, Customer, Order
    from predictions.models import CustomerPrediction
    from winback.models import LifecycleEvent, WinbackCase
    from winback.services.cases import PRIORITY_SQL
    from winback.services.lifecycle_sql import EVENTS_SQL, MODEL_RULE_PARTS, RHYTHM_RULE_PARTS
    from winback.services.policy import policy_current, policy_params
    from winback.sql import PRECEDENCE_SQL, STATUS_SQL

    p = policy_params(policy_current())
    tables = {name: connection.ops.quote_name(model._meta.db_table) for name, model in (
        ("order", Order), ("cancellation", Cancellation), ("customer", Customer), ("complaint", Complaint),
        ("prediction", CustomerPrediction), ("event", LifecycleEvent), ("case", WinbackCase))}
    # The engine's statement for every customer at once (no batch scope).
    events_sql = EVENTS_SQL.format(order=tables["order"], cancellation=tables["cancellation"],
                                   customer=tables["customer"], order_scope="true", customer_scope="true",
                                   **(MODEL_RULE_PARTS if p.model_rule else RHYTHM_RULE_PARTS))
    statements = {
        "1. INSERT ... SELECT of every event (and next crossing)": FLOOR_EVENTS.format(events_sql=events_sql),
        "2. UPDATE ... FROM of every customer's status, due_at": FLOOR_CUSTOMERS.format(
            status_sql=STATUS_SQL, precedence_sql=PRECEDENCE_SQL, **tables),
        "3. INSERT ... SELECT of the open cases": FLOOR_CASES.format(priority_sql=PRIORITY_SQL, **tables),
    }
    params = {**p.__dict__, "now": now, "holdout": p.holdout_share}
    runs: list[dict[str, float]] = []
    rows: dict[str, int] = {}
    with connection.cursor() as cur:
        # The engine's per-batch settings (lifecycle._scan_batch).
        cur.execute("SET work_mem = '256MB'")
        cur.execute("SET jit = off")
        for _ in range(2):
            for statement in FLOOR_SETUP:
                cur.execute(statement.format(**tables))
            times: dict[str, float] = {}
            for name, statement in statements.items():
                t0 = time.perf_counter()
                cur.execute(statement, params)
                times[name] = time.perf_counter() - t0
                rows[name] = cur.rowcount
            runs.append(times)
        cur.execute("SELECT kind, count(*) FROM floor_events GROUP BY kind")
        events = dict(cur.fetchall())
        cur.execute("SELECT count(*) FROM floor_due")
        due = cur.fetchone()[0]
        cur.execute("DROP TABLE floor_events, floor_customer, floor_cases, floor_due")
    best = min(runs, key=lambda r: sum(r.values()))
    return {"seconds": sum(best.values()), "best": best, "runs": runs, "events": events,
            "events_total": sum(events.values()), "due": due, "customers": list(rows.values())[1],
            "cases": list(rows.values())[2]}


def child_workers(args: argparse.Namespace, now: dt.datetime) -> dict:
    """A full scan as the workers run it: lifecycle_scan_start + batch_run_wait (the command's default)."""
    from core.batches import batch_run_wait
    from winback.services.lifecycle import lifecycle_scan_start, scan_result_of

    t0 = time.perf_counter()
    run = lifecycle_scan_start(full=True, now=now)
    run = batch_run_wait(run=run, timeout=7200)
    wall = time.perf_counter() - t0
    result = scan_result_of(run=run)
    # The run's own span (created .. finished), as scan_result_of gives it; the child's wait adds polling.
    return {"seconds": result.seconds, "wait_wall": wall, "summary": result.summary(), "parts": run.parts_total,
            "result": dataclasses.asdict(result)}


def child_orm(args: argparse.Namespace, now: dt.datetime) -> dict:
    """The naive way: per customer, its orders through the ORM, lifecycle_rules, get_or_create, save()."""
    from django.db import connection, transaction

    from crm.models import Customer
    from winback.models import LifecycleEvent
    from winback.services.lifecycle_rules import lifecycle_compute, status_of
    from winback.services.policy import policy_current, policy_params

    params = policy_params(policy_current())
    queries = [0]

    def count(execute, sql, p, many, context):
        queries[0] += 1
        return execute(sql, p, many, context)

    with transaction.atomic():
        with connection.cursor() as cur:
            # A seeded random sample; their events removed, so the loop writes them as a full scan does.
            cur.execute("SELECT setseed(%s)", [SEED + 0.02])
            cur.execute("SELECT id FROM (SELECT id, random() AS r FROM (SELECT id FROM crm_customer ORDER BY id) a) b"
                        " ORDER BY r LIMIT %s", [args.orm_customers])
            ids = sorted(r[0] for r in cur.fetchall())
            cur.execute("UPDATE winback_winbackcase SET lapse_event_id = NULL WHERE customer_id = ANY(%s)", [ids])
            cur.execute("DELETE FROM winback_lifecycleevent WHERE customer_id = ANY(%s)", [ids])
        n_orders = n_events = 0
        t0 = time.perf_counter()
        with connection.execute_wrapper(count):
            for customer in Customer.objects.filter(id__in=ids).order_by("id"):
                orders = [o.ordered_at for o in customer.orders.order_by("ordered_at", "id")]
                cancellations = [c.cancelled_at for c in customer.cancellations.order_by("cancelled_at")]
                events, due = lifecycle_compute(orders=orders, acquired_at=customer.acquired_at,
                                                cancellations=cancellations, policy=params, now=now)
                for kind, at in events:
                    LifecycleEvent.objects.get_or_create(customer=customer, kind=kind, occurred_at=at)
                customer.status = status_of(events, last_order_at=orders[-1] if orders else None)
                customer.lifecycle_due_at = due
                customer.lifecycle_version = customer.history_version
                customer.save()
                n_orders += len(orders)
                n_events += len(events)
        seconds = time.perf_counter() - t0
        transaction.set_rollback(True)
    return {"seconds": seconds, "customers": len(ids), "orders": n_orders, "events": n_events, "queries": queries[0]}


EXPLAINABLE = re.compile(r"^\s*(INSERT|UPDATE|DELETE|SELECT|WITH|CREATE TEMP TABLE \w+ AS)\b", re.I)


def child_explain(args: argparse.Namespace, now: dt.datetime) -> dict:
    """One batch of a full scan (the middle one), from an empty lifecycle, every statement explained."""
    from django.db import connection, transaction

    from winback.services import lifecycle
    from winback.services.policy import policy_current, policy_params

    params = policy_params(policy_current())
    scopes = list(lifecycle._full_scopes(50_000))
    scope = scopes[len(scopes) // 2]
    plans: list[dict] = []

    def explain_wrapper(execute, sql, p, many, context):
        if many or not EXPLAINABLE.match(sql) or "pg_advisory" in sql:
            return execute(sql, p, many, context)
        t0 = time.perf_counter()
        execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, p, many, context)
        plan = "\n".join(r[0] for r in context["cursor"].fetchall())
        plans.append({"sql": _key(sql), "seconds": time.perf_counter() - t0, "plan": plan})
        # Read-only, or a write whose rows the caller reads back (WITH ... SELECT): run it for real too.
        if sql.lstrip().upper().startswith(("SELECT", "WITH")):
            return execute(sql, p, many, context)
        return None

    with transaction.atomic():
        with connection.cursor() as cur:
            q = {"lo": scope.lo, "hi": scope.hi}
            cur.execute("DELETE FROM winback_coupon WHERE customer_id BETWEEN %(lo)s AND %(hi)s", q)
            cur.execute("DELETE FROM winback_winbackcase WHERE customer_id BETWEEN %(lo)s AND %(hi)s", q)
            cur.execute("DELETE FROM winback_lifecycleevent WHERE customer_id BETWEEN %(lo)s AND %(hi)s", q)
            cur.execute("UPDATE crm_customer SET status = 'active', lifecycle_version = 0, lifecycle_due_at = NULL"
                        " WHERE id BETWEEN %(lo)s AND %(hi)s", q)
            customers = cur.rowcount
        with connection.execute_wrapper(explain_wrapper):
            lifecycle._scan_batch(scope=scope, p=params, now=now)
        transaction.set_rollback(True)
    return {"scope": f"ids {scope.lo}..{scope.hi}", "customers": customers, "plans": plans}


if __name__ == "__main__":
    main()
