"""The purchase models at scale: fit BG/NBD, MBG/NBD and Gamma-Gamma on N customers and score them all.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/models.py \
        [--customers 1000000] [--orders-per-customer 10] [--runs 2] [--keep] [--reuse] [--profile]

PostgreSQL only. It works in its own database (`<name>_bench_models`), with a fixed as-of instant (AS_OF
below) and fixed seeds, and:
  1. builds the data (not part of the target; timed apart): N customers who buy as an MBG/NBD process
     does (Batislam et al. 2007, the generalisation of BG/NBD where a customer may also drop out right
     after the first purchase): a purchase rate per week lambda ~ Gamma(R, ALPHA), a dropout probability
     p ~ Beta(A, B), the first purchase uniform over the SPAN_WEEKS before AS_OF, purchases a Poisson
     process until the customer drops out (after the first purchase and after each repeat purchase, with
     probability p); ALPHA is calibrated on a pilot sample so that there are --orders-per-customer orders
     per customer on average. About 35% of the customers buy once. SAME_DAY of the purchases bring a
     second order a few hours later (the models count one purchase day). Amounts are lognormal around
     AMOUNT_MEAN EUR with a mean of each customer's own. The orders are generated in numpy in chunks, sent
     with a binary COPY to a staging table, then written set-based (customers from their aggregates,
     orders in time order, as they would have arrived; order indexes rebuilt after the load; VACUUM
     ANALYZE). With --reuse a database that already holds this data (same N, orders per customer, seed and
     generator version) is kept as it is; the predictions tables are emptied either way.
  2. runs `predictions.services.fitting.models_fit(as_of=AS_OF)` (with --nightly: as of now, as the nightly
     task does, whose tracking reuses the summary's pass over the orders) --runs times, each in a fresh child process
     (so that its peak RSS, ru_maxrss read inside it, is the fit's alone): run 1 is the first fit (no
     prediction rows yet), run 2 a refit (the nightly case: the previous night's rows are replaced, after a
     VACUUM of the predictions table, as autovacuum would have run during the day). Each
     prints the time of every step (FitReport.seconds), the time inside the summary's and the scoring's
     parts (timed by wrapping their module functions in the child, no change to the code measured), the
     ModelFit rows (parameters, usable, reason) beside the parameters the data were drawn with, the number
     scored, the wall time and the peak RSS, with PASS/FAIL against the targets (end to end < 60 s, peak
     RSS < 2 GB). --profile writes a cProfile of the last run to /tmp/bench_models.prof and prints its top.
  3. prints one summary block with the figures and the command that reproduces them.

The child re-invokes this file (`--child fit`) with DATABASE_URL pointing at the bench database,
DJANGO_SETTINGS_MODULE=config.settings.development, no Redis (the after-commit enqueue of the queue's
priority refresh goes to a filesystem broker in a temporary folder, not to a shared queue).
"""

import sys
from pathlib import Path

# Run as `python bench/models.py`, Python puts bench/ first on sys.path, where a sibling bench's name could
# shadow a standard module that psycopg and Django import: use the project root instead.
ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import shlex  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from bench.scratch_db import database_urls  # noqa: E402
from bench.seeding import MARK, child_run, customer_extra_columns, orders_without_indexes  # noqa: E402

AS_OF = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
SEED = 20260101
GENERATOR_VERSION = 1  # bump when the data the generator makes changes: --reuse then rebuilds
SPAN_WEEKS = 104.0  # first purchases uniform over the 2 years before AS_OF
# The process the customers follow (MBG/NBD): lambda ~ Gamma(shape R, rate ALPHA) per week (ALPHA
# calibrated to the orders per customer asked for), p ~ Beta(A, B). Beta(0.5, 1) is U-shaped: many
# customers leave at once (p near 1: the one-time buyers), many stay loyal (p near 0).
R, A, B = 2.0, 0.5, 1.0
RATE_CAP = 5.0  # purchases per week at most (no customer buys more than 5 times a week on average)
SAME_DAY = 0.03  # share of purchases with a second order 1 to 4 hours later
AMOUNT_MEAN = 40.0  # EUR; a customer's mean is lognormal (sigma 0.5) around it, an order's (sigma 0.4) around that
CHUNK = 100_000  # customers generated and sent per chunk
TARGET_SECONDS = 60.0
TARGET_RSS_MB = 2048.0
PG_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
PROFILE_FILE = Path("/tmp/bench_models.prof")

CUSTOMER_COLUMNS = ["id", "external_id", "name", "email", "phone", "timezone", "locale", "acquired_at", "status",
                    "email_consent", "email_consent_source", "last_order_at", "order_count", "total_spent",
                    "history_version", "lifecycle_version", "created_at", "updated_at"]

CUSTOMERS_SQL = """
INSERT INTO crm_customer (external_id, name, email, phone, timezone, locale, acquired_at, status, email_consent,
                          email_consent_source, last_order_at, order_count, total_spent, history_version,
                          lifecycle_version, created_at, updated_at{more_columns})
SELECT 'C' || lpad(g::text, 8, '0'), 'Customer ' || g, '', '', '', 'en', mn, 'active', 'unknown', '', mx, n,
       s / 100.0, 1, 0, now(), now(){more_values}
FROM (SELECT g, min(t) AS mn, max(t) AS mx, count(*) AS n, sum(cents) AS s FROM bench_stage GROUP BY g) a
ORDER BY g
"""

ORDERS_SQL = """
INSERT INTO crm_order (external_id, customer_id, ordered_at, amount, currency, coupon_code, created_at)
SELECT 'O' || lpad((row_number() OVER (ORDER BY s.t, s.g))::text, 10, '0'), m.id, s.t, s.cents / 100.0, 'EUR', '',
       now()
FROM bench_stage s JOIN bench_map m ON m.g = s.g
ORDER BY s.t, s.g
"""


# --- The data ------------------------------------------------------------------------------------------

def draw(rng: np.random.Generator, n: int, alpha: float) -> tuple[np.ndarray, ...]:
    """Per customer: repeat purchases c, age T (weeks), Poisson count M in (0, T] had it never left."""
    lam = np.minimum(rng.gamma(R, 1.0 / alpha, n), RATE_CAP)
    p = rng.beta(A, B, n)
    T = rng.uniform(0.0, SPAN_WEEKS, n)
    stays_for = rng.geometric(p) - 1  # repeat purchases before it drops out (0: gone after the first)
    M = rng.poisson(lam * T)
    return np.minimum(M, stays_for), T, M


def calibrate(orders_per_customer: float) -> float:
    """ALPHA such that a pilot sample has the orders per customer asked for (same-day extras included)."""
    want = orders_per_customer / (1 + SAME_DAY)
    lo, hi = 1e-3, 1e3
    for _ in range(40):
        alpha = (lo * hi) ** 0.5
        c, _, _ = draw(np.random.default_rng(SEED + 1), 200_000, alpha)
        lo, hi = (alpha, hi) if c.mean() + 1 > want else (lo, alpha)
    return (lo * hi) ** 0.5


def chunk_orders(rng: np.random.Generator, first_g: int, n: int, alpha: float) -> tuple[np.ndarray, ...]:
    """The orders of customers first_g .. first_g + n - 1: (g, microseconds since 2000-01-01, cents).

    Repeat purchase times given c of the M Poisson points in (0, T]: the first c order statistics of M
    uniforms, T * (E_1 + .. + E_j) / (E_1 + .. + E_{M+1}) with E exponential; the sum of the E's after the
    c-th is Gamma(M + 1 - c), drawn at once."""
    c, T, M = draw(rng, n, alpha)
    seg = np.repeat(np.arange(n), c)
    E = rng.exponential(size=seg.size)
    cum = np.cumsum(E)
    start = np.concatenate(([0], np.cumsum(c)[:-1]))
    before = np.concatenate(([0.0], cum))[start]  # running sum before each customer's first gap
    within = cum - before[seg]
    total = np.concatenate(([0.0], cum))[start + c] - before + rng.gamma(M + 1 - c, 1.0)
    repeat_weeks = T[seg] * within / total[seg]
    # Every purchase: the first (at age 0) and the repeats, as weeks before AS_OF.
    g = np.concatenate((np.arange(n), seg))
    weeks_before = np.concatenate((T, T[seg] - repeat_weeks))
    # Same-day extra orders, 1 to 4 hours after the purchase (never at or after AS_OF).
    extra = rng.random(g.size) < SAME_DAY
    later = weeks_before[extra] - rng.uniform(1, 4, int(extra.sum())) / (7 * 24)
    ok = later > 0
    g = np.concatenate((g, g[extra][ok]))
    weeks_before = np.concatenate((weeks_before, later[ok]))
    # Amounts: the customer's own mean, lognormal around AMOUNT_MEAN; the order's around it.
    own = np.log(AMOUNT_MEAN) - 0.5**2 / 2 + 0.5 * rng.standard_normal(n)
    cents = np.maximum(np.round(np.exp(own[g] - 0.4**2 / 2 + 0.4 * rng.standard_normal(g.size)) * 100), 50)
    as_of_us = int((AS_OF - PG_EPOCH).total_seconds()) * 1_000_000
    t = as_of_us - np.ceil(weeks_before * 7 * 86400 * 1e6).astype(np.int64)
    return (g + first_g).astype(np.int32), t, cents.astype(np.int32)


def binary_copy_rows(g: np.ndarray, t: np.ndarray, cents: np.ndarray) -> bytes:
    """PostgreSQL binary COPY rows (int4, timestamptz, int4) built as one numpy structured array."""
    row = np.dtype([("nf", ">i2"), ("l1", ">i4"), ("g", ">i4"), ("l2", ">i4"), ("t", ">i8"), ("l3", ">i4"),
                    ("c", ">i4")])
    out = np.empty(g.size, dtype=row)
    out["nf"], out["l1"], out["l2"], out["l3"] = 3, 4, 8, 4
    out["g"], out["t"], out["c"] = g, t, cents
    return out.tobytes()


def build(conn, customers: int, orders_per_customer: float) -> dict:
    for setting in ("work_mem = '1GB'", "maintenance_work_mem = '1GB'", "synchronous_commit = off",
                    "TIME ZONE 'UTC'"):
        conn.execute(f"SET {setting}")
    steps: list[tuple[str, float]] = []
    t0 = time.perf_counter()
    alpha = calibrate(orders_per_customer)
    steps.append(("calibrate", time.perf_counter() - t0))

    t0 = time.perf_counter()
    conn.execute("DROP TABLE IF EXISTS bench_stage, bench_map")
    conn.execute("CREATE UNLOGGED TABLE bench_stage (g int4 NOT NULL, t timestamptz NOT NULL, cents int4 NOT NULL)")
    rng = np.random.default_rng(SEED)
    gen_s = 0.0
    with conn.cursor().copy("COPY bench_stage (g, t, cents) FROM STDIN (FORMAT BINARY)") as copy:
        copy.write(b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8)
        for first in range(0, customers, CHUNK):
            g0 = time.perf_counter()
            data = binary_copy_rows(*chunk_orders(rng, first + 1, min(CHUNK, customers - first), alpha))
            gen_s += time.perf_counter() - g0
            copy.write(data)
        copy.write(b"\xff\xff")
    steps.append((f"generate (numpy {gen_s:.1f}s) + binary COPY to staging", time.perf_counter() - t0))

    def step(label: str, sql: str, params: dict | None = None) -> None:
        t0 = time.perf_counter()
        conn.execute(sql, params or {})
        steps.append((label, time.perf_counter() - t0))

    step("customers", CUSTOMERS_SQL.format(**customer_extra_columns(conn, known=CUSTOMER_COLUMNS)))
    step("map", "CREATE UNLOGGED TABLE bench_map AS SELECT id, substr(external_id, 2)::int AS g FROM crm_customer")
    with orders_without_indexes(conn, steps=steps, label="order indexes and constraints"):
        step("orders (in time order)", ORDERS_SQL)
    orders = conn.execute("SELECT count(*) FROM bench_stage").fetchone()[0]
    conn.execute("DROP TABLE bench_stage, bench_map")
    conn.execute("DROP TABLE IF EXISTS bench_models_meta")
    conn.execute("CREATE TABLE bench_models_meta AS SELECT %s::int AS customers, %s::float8 AS orders_per_customer,"
                 " %s::bigint AS seed, %s::int AS version, %s::float8 AS alpha, %s::bigint AS orders, now() AS built_at",
                 [customers, orders_per_customer, SEED, GENERATOR_VERSION, alpha, orders])
    step("vacuum analyze", "VACUUM ANALYZE crm_customer, crm_order")
    conn.execute("CHECKPOINT")
    print("   build steps: " + ", ".join(f"{label} {s:.1f}s" for label, s in steps))
    return {"alpha": alpha, "orders": orders}


def held(psycopg, admin_url: str, bench_url: str, bench_db: str, customers: int, opc: float) -> dict | None:
    """The generator's figures if the bench database holds exactly this data set."""
    with psycopg.connect(admin_url, autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [bench_db]).fetchone():
            return None
    with psycopg.connect(bench_url, autocommit=True) as conn:
        if conn.execute("SELECT to_regclass('bench_models_meta')").fetchone()[0] is None:
            return None
        row = conn.execute("SELECT customers, orders_per_customer, seed, version, alpha, orders"
                           " FROM bench_models_meta").fetchone()
    if row[:4] != (customers, opc, SEED, GENERATOR_VERSION):
        return None
    return {"alpha": row[4], "orders": row[5]}


def describe(conn) -> dict:
    row = conn.execute("""
        SELECT count(*), sum(order_count), count(*) FILTER (WHERE order_count = 1),
               percentile_disc(0.5) WITHIN GROUP (ORDER BY order_count), max(order_count),
               min(acquired_at), max(last_order_at), avg(total_spent / order_count)
        FROM crm_customer""").fetchone()
    sizes = conn.execute("SELECT pg_size_pretty(pg_table_size('crm_order')), pg_size_pretty(pg_indexes_size('crm_order')),"
                         " pg_size_pretty(pg_total_relation_size('crm_customer'))").fetchone()
    pg = {name: conn.execute("SELECT current_setting(%s)", [name]).fetchone()[0]
          for name in ("server_version", "shared_buffers", "work_mem", "max_parallel_workers_per_gather")}
    print(f"   data: {row[0]:,} customers, {row[1]:,} orders ({row[2]:,} one-order customers ="
          f" {100 * row[2] / max(row[0], 1):.1f}%, median {row[3]}, max {row[4]} orders per customer),"
          f" mean order {row[7]:.2f} EUR, orders {row[5]:%Y-%m-%d} .. {row[6]:%Y-%m-%d %H:%M};"
          f" crm_order {sizes[0]} + indexes {sizes[1]}, crm_customer {sizes[2]}")
    print("   server: " + ", ".join(f"{k} {v}" for k, v in sorted(pg.items())))
    return {"customers": row[0], "orders": row[1], "one_time": row[2]}


def reset_predictions(conn) -> None:
    """No fit and no prediction yet: run 1 is the first fit ever."""
    conn.execute("TRUNCATE predictions_customerprediction")
    # DELETE, not TRUNCATE: a dormancy policy may point at a fit (a policy on the model rule keeps its fit).
    conn.execute("DELETE FROM predictions_modelfit WHERE id NOT IN"
                 " (SELECT model_fit_id FROM winback_dormancypolicy WHERE model_fit_id IS NOT NULL)")
    conn.execute("VACUUM ANALYZE predictions_customerprediction, predictions_modelfit")


# --- Parent --------------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders-per-customer", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=2, help="fits in a row (1: first fit, 2: + a refit)")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument("--reuse", action="store_true", help="reuse the bench database if it holds this data")
    parser.add_argument("--profile", action="store_true", help=f"cProfile the last run into {PROFILE_FILE}")
    parser.add_argument("--nightly", action="store_true",
                        help="fit as of now, as the nightly task does (default: as of the data's end, AS_OF)")
    parser.add_argument("--child", choices=["fit"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child_main(args)

    import psycopg

    url, bench_db, bench_url, admin_url = database_urls(suffix="bench_models")
    env = {**os.environ, "DATABASE_URL": bench_url, "VAR_DIR": tempfile.mkdtemp(prefix="bench-var-"),
           "DJANGO_SETTINGS_MODULE": "config.settings.development", "REDIS_URL": "", "CACHE_URL": "",
           "CELERY_TASK_ALWAYS_EAGER": "false", "PYTHONUNBUFFERED": "1"}
    command = ("DATABASE_URL=" + shlex.quote(url) + " .venv/bin/python bench/models.py"
               f" --customers {args.customers} --orders-per-customer {args.orders_per_customer:g}"
               + (f" --runs {args.runs}" if args.runs != 2 else "") + " --keep --reuse")
    build_s = None
    try:
        gen = held(psycopg, admin_url, bench_url, bench_db, args.customers, args.orders_per_customer) if args.reuse else None
        if gen is not None:
            subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
            print(f"1. reused {bench_db} (same customers, orders per customer, seed and generator)")
        else:
            with psycopg.connect(admin_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{bench_db}" WITH (FORCE)')
                admin.execute(f'CREATE DATABASE "{bench_db}"')
            subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
            t0 = time.perf_counter()
            with psycopg.connect(bench_url, autocommit=True) as conn:
                gen = build(conn, args.customers, args.orders_per_customer)
            build_s = time.perf_counter() - t0
            print(f"1. build: {args.customers:,} customers, {gen['orders']:,} orders in {build_s:.1f}s"
                  " (not part of the target)")
        with psycopg.connect(bench_url, autocommit=True) as conn:
            data = describe(conn)
            reset_predictions(conn)
        print(f"   drawn from MBG/NBD r={R:g}, alpha={gen['alpha']:.4g} (rate per week, capped at {RATE_CAP:g}),"
              f" a={A:g}, b={B:g}; first purchases over {SPAN_WEEKS:g} weeks before {AS_OF:%Y-%m-%d};"
              f" {SAME_DAY:.0%} same-day second orders")

        runs = []
        for i in range(1, args.runs + 1):
            label = "first fit (no predictions yet)" if i == 1 else "refit (replaces the previous predictions)"
            if i > 1:
                # The nightly case: autovacuum has had the day to clear the rows the previous fit deleted.
                with psycopg.connect(bench_url, autocommit=True) as conn:
                    conn.execute("VACUUM ANALYZE predictions_customerprediction")
            child_args = ["--child", "fit"] + (["--profile"] if args.profile and i == args.runs else []) + (["--nightly"] if args.nightly else [])
            load = os.getloadavg()[0]
            out = run_child(child_args, env)
            out["load"] = load
            runs.append(out)
            print(f"2.{i} models_fit, {label} (load average before it {load:.1f} on {os.cpu_count()} CPUs"
                  + ("; cProfile on: its times are inflated" if "--profile" in child_args else "") + "):")
            print_run(out, gen)
        with psycopg.connect(bench_url, autocommit=True) as conn:
            check = conn.execute("""
                SELECT count(*), count(*) FILTER (WHERE p_alive_model = 'bgnbd'), avg(p_alive),
                       avg(expected_purchases_90d), avg(expected_order_value), sum(predicted_clv_12m),
                       count(*) FILTER (WHERE predicted_clv_12m IS NULL)
                FROM predictions_customerprediction""").fetchone()
        print(f"   predictions table: {check[0]:,} rows ({check[1]:,} by BG/NBD, {check[0] - check[1]:,} by MBG/NBD),"
              f" mean P(alive) {float(check[2] or 0):.3f}, mean E[purchases 90d] {float(check[3] or 0):.2f},"
              f" mean E[order value] {float(check[4] or 0):.2f}, total CLV 12m {float(check[5] or 0):,.0f},"
              f" {check[6]:,} without CLV")
        if args.profile:
            print_profile()

        worst_s = max(r["seconds_total"] for r in runs)
        worst_rss = max(r["rss_mb"] for r in runs)
        print()
        print("=" * 100)
        print(f"models bench: {data['customers']:,} customers, {data['orders']:,} orders"
              f" ({100 * data['one_time'] / max(data['customers'], 1):.1f}% one-time buyers), as of "
              + ("now (--nightly)" if args.nightly else f"{AS_OF:%Y-%m-%d %H:%M} UTC")
              + f" ({'reused database' if build_s is None else f'built in {build_s:.0f}s, not counted'})")
        steps = list(runs[0]["seconds"])
        print(f"  {'step':<44}" + "".join(f"{f'run {i}':>12}" for i in range(1, len(runs) + 1)))
        for key in steps:
            print(f"  {key:<44}" + "".join(f"{r['seconds'].get(key, float('nan')):11.2f}s" for r in runs))
        print(f"  {'models_fit() end to end':<44}" + "".join(f"{r['seconds_total']:11.2f}s" for r in runs))
        print(f"  {'child process wall (incl. Django start)':<44}" + "".join(f"{r['wall']:11.2f}s" for r in runs))
        print(f"  {'peak RSS of the child':<44}" + "".join(f"{r['rss_mb']:10.0f}MB" for r in runs))
        print(f"  {'customers scored':<44}" + "".join(f"{r['scored']:>12,}" for r in runs))
        print(f"  {'load average before the run':<44}" + "".join(f"{r['load']:12.1f}" for r in runs)
              + f"   ({os.cpu_count()} CPUs, shared with whatever else runs)")
        for f in runs[-1]["fits"]:
            print(f"  {f['model']:<12} usable={f['usable']!s:<5} {fmt_params(f['params'])}"
                  + (f"  reason: {f['reason']}" if f["reason"] else ""))
        ok_s, ok_rss = worst_s < TARGET_SECONDS, worst_rss < TARGET_RSS_MB
        print(f"  end to end (worst run) {worst_s:8.2f} s   target < {TARGET_SECONDS:.0f} s   {'PASS' if ok_s else 'FAIL'}")
        print(f"  peak RSS (worst run)   {worst_rss:8.0f} MB  target < {TARGET_RSS_MB:.0f} MB  {'PASS' if ok_rss else 'FAIL'}")
        print(f"  reproduce: {command}")
        print("  (without --keep --reuse: the data are built afresh, same seed, and the database dropped at the end)")
        print("=" * 100)
    finally:
        if not args.keep:
            with psycopg.connect(admin_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{bench_db}" WITH (FORCE)')


def fmt_params(params: dict) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in params.items()) or "(no parameters)"


def print_run(out: dict, gen: dict) -> None:
    for key, s in out["seconds"].items():
        print(f"     {key:<40} {s:8.2f}s")
    print(f"     {'models_fit() end to end':<40} {out['seconds_total']:8.2f}s   (child wall {out['wall']:.1f}s incl."
          f" Django start)   target < {TARGET_SECONDS:.0f}s: {'PASS' if out['seconds_total'] < TARGET_SECONDS else 'FAIL'}")
    print(f"     {'peak RSS':<40} {out['rss_mb']:8.0f}MB ({out['rss_mb'] / 1024:.2f} GB)"
          f"   target < {TARGET_RSS_MB / 1024:.0f} GB: {'PASS' if out['rss_mb'] < TARGET_RSS_MB else 'FAIL'}")
    print(f"     {out['summary']}")
    print(f"     summary: {out['customers']:,} customers, {out['repeat_buyers']:,} repeat buyers,"
          f" {out['purchase_days']:,} purchase days")
    for f in out["fits"]:
        drawn = {"bgnbd": "", "mbgnbd": f"   (drawn with r={R:g}, alpha={gen['alpha']:.4g}, a={A:g}, b={B:g};"
                 f" lambda capped at {RATE_CAP:g}/week)", "gamma_gamma": ""}.get(f["model"], "")
        ll = f"{f['log_likelihood']:,.0f}" if f["log_likelihood"] is not None else "-"
        print(f"     {f['model']:<12} usable={f['usable']!s:<5} converged={f['converged']!s:<5} {f['duration_ms']:6d} ms"
              f"  LL {ll}  {fmt_params(f['params'])}{drawn}")
        if f["reason"]:
            print(f"     {'':<12} reason: {f['reason']}")


def print_profile() -> None:
    import pstats

    print(f"   cProfile of the last run ({PROFILE_FILE}), top 25 by cumulative time:")
    stats = pstats.Stats(str(PROFILE_FILE))
    stats.sort_stats("cumulative").print_stats(25)
    print("   top 20 by own time:")
    stats.sort_stats("tottime").print_stats(20)


def run_child(argv: list[str], env: dict[str, str]) -> dict:
    return child_run(Path(__file__).resolve(), argv, env, cwd=ROOT)


# --- Child (Django) ------------------------------------------------------------------------------------

def timed(module, name: str, label: str, seconds: dict) -> None:
    """Wrap module.name so that its time adds up under seconds[label] (the callers look it up at call time)."""
    original = getattr(module, name)

    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            seconds[label] = seconds.get(label, 0.0) + time.perf_counter() - t0

    setattr(module, name, wrapper)


def child_main(args: argparse.Namespace) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.development")
    import django

    django.setup()
    from predictions.services import scoring, summary
    from predictions.services.fitting import models_fit

    inner: dict[str, float] = {}
    timed(summary, "_aggregate_postgresql", "  summary: COPY out + numpy aggregation", inner)
    timed(scoring, "_model_arrays", "  score: P(alive), E[purchases 90d]", inner)
    timed(scoring.btyd, "clv", "  score: CLV 12 months", inner)
    timed(scoring, "_rows", "  score: rows", inner)
    timed(scoring, "_write", "  score: DELETE + COPY", inner)
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    t0 = time.perf_counter()
    # --nightly: as the nightly task does, as of now (the tracking then reuses the summary's pass over the orders).
    report = models_fit(as_of=None if args.nightly else AS_OF, trigger="bench")
    total = time.perf_counter() - t0
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(str(PROFILE_FILE))
    seconds: dict[str, float] = {}
    for key, value in report.seconds.items():  # each step, its parts (timed above) after it
        seconds[key] = value
        prefix = {"summary": "  summary", "score": "  score"}.get(key)
        if prefix:
            seconds.update({k: v for k, v in inner.items() if k.startswith(prefix)})
    fits = [{"model": f.model, "usable": f.usable, "converged": f.converged, "reason": f.reason, "params": f.params,
             "log_likelihood": f.log_likelihood, "duration_ms": f.duration_ms} for f in report.fits]
    first = report.fits[0] if report.fits else None
    out = {"seconds": seconds, "seconds_total": total, "scored": report.scored, "summary": report.summary(),
           "fits": fits, "customers": first.customers if first else 0,
           "repeat_buyers": first.repeat_buyers if first else 0, "purchase_days": first.purchase_days if first else 0,
           "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    print(MARK + json.dumps(out, default=str))


if __name__ == "__main__":
    main()
