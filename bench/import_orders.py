"""Import 1,000,000 order rows from CSV into PostgreSQL; print rows/s beside a raw COPY of the same file.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/import_orders.py [--rows N]

It works in its own database (`<name>_bench_import`, created and migrated afresh), makes N orders over
N/10 customers, and measures in one run:
  1. raw COPY of the file into a bare table (typed columns, no index, no constraint): the yardstick;
  2. COPY of the already-resolved rows into an empty copy of the real orders table (its indexes, checks
     and foreign key): the floor any importer into this schema pays;
  3. `manage.py import_csv orders FILE` in a subprocess (validation, customer lookup, conflict check,
     audit rows, customer figures), with its peak RSS;
  4. the same import again (everything already present: nothing may be added).
"""

import argparse
import csv
import datetime as dt
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scratch_db import database_urls  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=0, help="default: rows / 10")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    args = parser.parse_args()
    customers = args.customers or max(1, args.rows // 10)

    url, bench_db, bench_url, admin_url = database_urls(suffix="bench_import")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{bench_db}"')
        admin.execute(f'CREATE DATABASE "{bench_db}"')

    env = {**os.environ, "DATABASE_URL": bench_url, "VAR_DIR": tempfile.mkdtemp(prefix="bench-var-")}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)

    work = Path(tempfile.mkdtemp(prefix="bench-import-"))
    path = work / "orders.csv"
    t0 = time.perf_counter()
    make_csv(path, rows=args.rows, customers=customers)
    print(f"generated {args.rows:,} rows ({path.stat().st_size / 1e6:.0f} MB) over {customers:,} customers in {time.perf_counter() - t0:.1f}s")

    with psycopg.connect(bench_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO crm_customer (external_id, name, email, phone, timezone, call_zones, locale, status,"
            " email_consent, email_consent_source, order_count, total_spent, history_version, lifecycle_version,"
            " created_at, updated_at)"
            " SELECT 'C' || lpad(g::text, 7, '0'), 'Customer ' || g, '', '', '', '', 'en', 'prospect', 'unknown', '',"
            " 0, 0, 0, 0, now(), now() FROM generate_series(0, %s) g", [customers - 1],
        )
        conn.execute("VACUUM ANALYZE crm_customer")

        conn.execute("CREATE TABLE bare_orders (external_id text, customer text, ordered_at timestamptz,"
                     " amount numeric, currency text, coupon_code text)")
        raw = timed_copy(conn, path, "COPY bare_orders FROM STDIN (FORMAT csv, HEADER true)")
        print(f"1. raw COPY into a bare table:         {raw:6.2f}s  {args.rows / raw:>10,.0f} rows/s")

        # The schema floor: the same rows, customer ids resolved, straight into a copy of crm_order.
        conn.execute("CREATE TABLE floor_orders (LIKE crm_order INCLUDING ALL)")
        conn.execute("ALTER TABLE floor_orders ADD FOREIGN KEY (customer_id) REFERENCES crm_customer (id)")
        resolved = work / "resolved.csv"
        with open(resolved, "wb") as out, conn.cursor().copy(
            "COPY (SELECT b.external_id, c.id, b.ordered_at, b.amount, b.currency, coalesce(b.coupon_code, ''), now()"
            " FROM bare_orders b JOIN crm_customer c ON c.external_id = b.customer) TO STDOUT"
        ) as copy:
            for chunk in copy:
                out.write(chunk)
        floor = timed_copy(conn, resolved, "COPY floor_orders (external_id, customer_id, ordered_at, amount, currency,"
                                           " coupon_code, created_at) FROM STDIN")
        print(f"2. COPY into the real orders schema:   {floor:6.2f}s  {args.rows / floor:>10,.0f} rows/s  (floor)")
        conn.execute("DROP TABLE floor_orders; DROP TABLE bare_orders")
        conn.execute("CHECKPOINT")

    imported, rss_mb = run_import(path, env)
    print(f"3. import_csv orders:                  {imported:6.2f}s  {args.rows / imported:>10,.0f} rows/s"
          f"  peak RSS {rss_mb:.0f} MB")
    again, _ = run_import(path, env)
    print(f"4. import_csv again (all present):     {again:6.2f}s  {args.rows / again:>10,.0f} rows/s")

    with psycopg.connect(bench_url) as conn:
        orders, audits = conn.execute("SELECT (SELECT count(*) FROM crm_order), (SELECT count(*) FROM crm_auditentry"
                                      " WHERE entity = 'crm.order')").fetchone()
        counted = conn.execute("SELECT sum(order_count) FROM crm_customer").fetchone()[0]
    assert orders == audits == counted == args.rows, (orders, audits, counted)
    print(f"orders {orders:,}, audit rows {audits:,}, sum of customers' order_count {counted:,}: consistent")
    print(f"import speed / raw COPY speed: {raw / imported:.2f}  (target >= 0.25);"
          f"  floor / raw COPY: {raw / floor:.2f};  import / floor: {floor / imported:.2f}")
    print(f"peak RSS of the import: {rss_mb:.0f} MB (target < 500 MB)")
    if not args.keep:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{bench_db}"')


def make_csv(path: Path, *, rows: int, customers: int) -> None:
    rng = random.Random(42)
    start = dt.datetime(2023, 1, 1, tzinfo=dt.timezone.utc)
    span = 3 * 365 * 86400
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["external_id", "customer", "ordered_at", "amount", "currency", "coupon_code"])
        for i in range(rows):
            writer.writerow([
                f"O{i:09d}", f"C{rng.randrange(customers):07d}",
                (start + dt.timedelta(seconds=rng.randrange(span))).isoformat(),
                f"{rng.uniform(5, 400):.2f}", "EUR", "WINBACK10" if rng.random() < 0.05 else "",
            ])


def timed_copy(conn: psycopg.Connection, path: Path, sql: str) -> float:
    t0 = time.perf_counter()
    with open(path, "rb") as f, conn.cursor().copy(sql) as copy:
        while block := f.read(1 << 20):
            copy.write(block)
    return time.perf_counter() - t0


def run_import(path: Path, env: dict[str, str]) -> tuple[float, float]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "manage.py", "import_csv", "orders", str(path), "--no-progress", "--batch-size", "20000"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"import failed:\n{proc.stdout}\n{proc.stderr}")
    print("   ", proc.stdout.strip())
    # ru_maxrss of the children is the largest of them (KiB on Linux): the migrate run is far smaller.
    return elapsed, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


if __name__ == "__main__":
    main()
