"""What the benches that seed millions of rows with server-side SQL and measure in child processes share
(bench/lifecycle.py, bench/models.py)."""

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg


def customer_extra_columns(conn: psycopg.Connection, *, known: list[str]) -> dict[str, str]:
    """Any NOT NULL column of crm_customer without a database default that ``known`` does not name (a later
    migration added it), with its blank value: the ``more_columns`` and ``more_values`` fragments of an INSERT
    template (str.format: the JSON blank is written '{{}}')."""
    more = conn.execute("""
        SELECT column_name, data_type FROM information_schema.columns
        WHERE table_schema = current_schema() AND table_name = 'crm_customer' AND is_nullable = 'NO'
          AND column_default IS NULL AND column_name <> ALL(%s) ORDER BY ordinal_position""", [known]).fetchall()
    blank = {"boolean": "false", "integer": "0", "bigint": "0", "smallint": "0", "numeric": "0", "jsonb": "'{{}}'"}
    return {"more_columns": "".join(f", {name}" for name, _ in more),
            "more_values": "".join(f", {blank.get(kind, chr(39) * 2)}" for _, kind in more)}


@contextmanager
def orders_without_indexes(conn: psycopg.Connection, *, steps: list[tuple[str, float]], label: str) -> Iterator[None]:
    """Load crm_order without its secondary indexes and its unique and foreign-key constraints, then put them
    back under the same names; the rebuild's time goes into ``steps`` as ``label``."""
    cons = conn.execute("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
                        " WHERE conrelid = 'crm_order'::regclass AND contype IN ('u', 'f') ORDER BY contype DESC").fetchall()
    idx = conn.execute("SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                       " WHERE i.indrelid = 'crm_order'::regclass AND NOT i.indisprimary"
                       " AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid"
                       " AND k.conrelid = 'crm_order'::regclass)").fetchall()
    for name, _ in cons:
        conn.execute(f'ALTER TABLE crm_order DROP CONSTRAINT "{name}"')
    for name, _ in idx:
        conn.execute(f'DROP INDEX "{name}"')
    yield
    t0 = time.perf_counter()
    for _, definition in idx:
        conn.execute(definition)
    for name, definition in cons:
        conn.execute(f'ALTER TABLE crm_order ADD CONSTRAINT "{name}" {definition}')
    steps.append((label, time.perf_counter() - t0))


# A child prints its figures as one line: MARK followed by JSON (its stdout may hold other output).
MARK = "BENCH-JSON "


def child_run(script: Path, argv: list[str], env: dict[str, str], *, cwd: Path) -> dict:
    """Run ``script`` with ``argv`` in a fresh interpreter (its RSS is its own) and return the figures of its
    last MARK line, with its wall time as "wall"; exit with its output when it fails or prints none."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, str(script), *argv], cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    lines = [line for line in proc.stdout.splitlines() if line.startswith(MARK)]
    if proc.returncode != 0 or not lines:
        sys.exit(f"child {argv} failed ({proc.returncode}):\n{proc.stdout[-5000:]}\n{proc.stderr[-5000:]}")
    return {**json.loads(lines[-1][len(MARK):]), "wall": wall}
