"""The orders import as a batch run (core/batches.py): a file of millions of orders, loaded at close to the
speed the orders table itself allows.

1. The caller (``orders_import``, in the command's process) reads the file as a stream and validates each
   row; a rejected row goes to the error report with its reason. On PostgreSQL the good rows are copied
   (COPY) into an unlogged staging table, in the file's order; a row whose external_id may have come
   before in the file (a bit array of the ids seen: a few false alarms, never a miss) goes to a second
   one, of ``later`` rows.
   The parts are ranges of the staging table's pages, so each holds about ``batch_size`` rows and the
   orders go into the table's indexes in the file's order, as a plain COPY of the file would.
2. Each part inserts its new orders with one INSERT ... SELECT joined to the
   customers by their external_id, each with the run's id, and names the rows it refused (no such customer,
   or an order of that external_id already stored with other data: orders are immutable). The customers'
   figures of what it created go into the run's delta table, in the same transaction as the orders and the
   part's "done" mark. No two parts hold the same external_id and they only append to the delta table, so
   they run side by side on any workers; a part that ran is never run again (core.batches), and its work
   run twice adds nothing (the second finds its orders present).
3. The finish takes the ``later`` rows, in the file's order: the first row of an external_id that has a
   customer wins, a repeat with the same data is unchanged, one with other data is refused, as row by row.
   Then it moves each customer's figures once (order count, total spent, first and last order, a prospect
   becomes active, history_version bumped for the lifecycle), sends the lifecycle follow-up for them, writes
   the run's one audit record (who, file name and SHA-256, counts, the first rejected rows and the report's
   path) and drops the staging tables.

An import writes no audit row per order: the run's record and the run's id on each order it created say
who brought which order in, which is what users of bulk loaders expect. A run that changed nothing (a
re-import) has no audit record; its BatchRun row still says who ran it and what it read. The customers'
figures move in the finish, once per customer; if the run fails, the caller moves them for the parts done
and drops the staging tables (``_salvage``), and importing the file again adds the rest.

Elsewhere (SQLite, the embedded default) the same kind runs with the validated rows in the parts'
parameters and the ORM doing a part's work: fine for the sizes an embedded database holds.

Re-importing a file adds nothing: every order is found already present (an index probe each) and the run
ends with no change.
"""

import csv
import datetime as dt
import hashlib
import heapq
import io
import itertools
import logging
import math
import re
import tempfile
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce, Greatest, Least
from django.utils import timezone
from django.utils.translation import gettext
from psycopg import sql
from tqdm import tqdm

from core.batches import BatchKind, BatchRunFailed, batch_kind_register, batch_run_start, batch_run_wait
from core.bounds import EARLIEST_BUSINESS_DATETIME, latest_business_datetime
from core.dialect import is_postgresql
from core.models import BatchRun
from core.sql import compose
from crm.models import AuditEntry, Customer, Order
from crm.services.audit import Actor, audit_record
from crm.services.import_rows import ImportResult, header_read, undecodable_error, width_error
from crm.services.orders import OrderInput, _differences, order_input_parse
from crm.sql import CUSTOMER_FIGURES_MOVE
from crm.signals import history_changed

log = logging.getLogger(__name__)

KIND = "crm.import_orders"
ORDER_REQUIRED = ("external_id", "customer", "ordered_at", "amount")
ORDER_OPTIONAL = ("currency", "coupon_code")
STAGE_COLUMNS = ("external_id", "customer", "ordered_at", "amount", "currency", "coupon_code")
SEEN_BITS = 1 << 28  # 32 MB: under 1% false alarms ("later" rows the finish takes) up to 2.5 million rows
AUDIT_ERRORS = 20  # rejected rows quoted in the run's audit record (the report has them all)
COPY_BLOCK = 1 << 20
COPY_LINES = 20_000  # staging lines sent to COPY at a time (about a megabyte)

# --- Statements (PostgreSQL) ---------------------------------------------------------------------------

# Unlogged (a crash loses only a staging table, which a new run rebuilds) and never vacuumed (it lives for
# one run).
_CREATE_STAGE = (
    "CREATE UNLOGGED TABLE {table} (row integer NOT NULL, external_id text NOT NULL,"
    " customer text NOT NULL, ordered_at timestamptz NOT NULL, amount numeric NOT NULL, currency text NOT NULL,"
    " coupon_code text NOT NULL) WITH (autovacuum_enabled = off)"
)
_CREATE_DELTA = (
    "CREATE UNLOGGED TABLE {delta} (customer_id bigint NOT NULL, n integer NOT NULL, s numeric NOT NULL,"
    " mn timestamptz NOT NULL, mx timestamptz NOT NULL) WITH (autovacuum_enabled = off)"
)
_COPY_STAGE = "COPY {table} (row, external_id, customer, ordered_at, amount, currency, coupon_code) FROM STDIN"
_STAGE_PAGES = "SELECT pg_relation_size(%s::regclass) / current_setting('block_size')::int"
_DROP_STAGE = "DROP TABLE IF EXISTS {stage}, {later}, {delta}"
_LOCK_DELTA = "LOCK TABLE {delta} IN ACCESS EXCLUSIVE MODE"

# A part: its pages of the staging table (a TID range scan).
_PART_ROWS = "SELECT * FROM {stage} WHERE ctid >= %(lo)s::tid AND ctid < %(hi)s::tid"
# The finish: the later rows.
_LATER_ROWS = "SELECT * FROM {later}"

# Indexes: customer_external_id_unique, order_external_id_unique (one probe of each per row), then the
# primary keys. In one pass over the rows: each row's customer and stored order (``stored``, below); the
# first row (in the file's order) of each external_id that is new and has a customer is inserted; what it
# created is summed per customer into the run's delta table. The insert is a plain one (ON CONFLICT's
# speculative insertion costs a quarter more per row); only when a concurrent writer (the API, another
# import) stored one of the orders meanwhile does it run again with ON_CONFLICT: that writer's order wins,
# and _REFUSED classifies the rows again. It returns the refused rows (no such customer; a stored order, or
# the file's first row of that external_id, with other data) and one row of counts (its row is NULL).
_WRITE = (
    "WITH s AS MATERIALIZED ("
    "  SELECT s.row, s.external_id, s.customer, s.ordered_at, s.amount,"
    "         coalesce(nullif(s.currency, ''), %(currency)s) AS currency, s.coupon_code, c.id AS customer_id,"
    "         o.id IS NOT NULL AS present, o.customer_id AS o_customer_id, o.ordered_at AS o_ordered_at,"
    "         o.amount AS o_amount, o.currency AS o_currency, o.coupon_code AS o_coupon_code"
    "  FROM ({rows}) s LEFT JOIN {customer} c ON c.external_id = s.customer"
    "  LEFT JOIN LATERAL ({stored}) o ON true),"
    " first AS {first},"
    " fresh AS ("
    "  INSERT INTO {order} AS o (external_id, customer_id, ordered_at, amount, currency, coupon_code, created_at,"
    "                            import_run_id)"
    "  SELECT external_id, customer_id, ordered_at, amount, currency, coupon_code, %(now)s, %(run)s FROM first"
    "  {on_conflict}"
    "  RETURNING o.customer_id, o.amount, o.ordered_at),"
    " moved AS ("
    "  INSERT INTO {delta} (customer_id, n, s, mn, mx)"
    "  SELECT customer_id, count(*), sum(amount), min(ordered_at), max(ordered_at) FROM fresh GROUP BY customer_id"
    "  RETURNING n),"
    " refused AS ("
    "  SELECT row, external_id, customer, ordered_at, amount, currency, coupon_code, customer_id IS NULL AS unknown,"
    "         o_customer_id, o_ordered_at, o_amount, o_currency, o_coupon_code"
    "  FROM s WHERE customer_id IS NULL OR (present AND (o_customer_id <> customer_id OR o_ordered_at <> ordered_at"
    "    OR o_amount <> amount OR o_currency <> currency OR o_coupon_code <> coupon_code))"
    "  {twins})"
    " SELECT r.row, r.external_id, r.customer, r.ordered_at, r.amount, r.currency, r.coupon_code, r.unknown,"
    "        pc.external_id, r.o_ordered_at, r.o_amount, r.o_currency, r.o_coupon_code, NULL, NULL, NULL"
    " FROM refused r LEFT JOIN {customer} pc ON pc.id = r.o_customer_id"
    " UNION ALL"
    " SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,"
    "        (SELECT coalesce(sum(n), 0)::bigint FROM moved), (SELECT count(*) FROM first), (SELECT count(*) FROM s)"
)
ON_CONFLICT = "ON CONFLICT (external_id) DO NOTHING"
# Each row's stored order: a probe per row, whatever the statistics say (the orders table may have grown by
# millions since its last ANALYZE, this very run, and a planner that thinks it small hashes all of it for
# every part).
_STORED = "SELECT * FROM {order} o WHERE o.external_id = s.external_id LIMIT 1"
# Or none, a first guess that spares a part of new orders (a first import) its probes: if one of them is
# stored after all, the plain insert fails on it and the part runs again with _STORED. Taken when none of
# the part's first rows is stored (a re-import goes straight to _STORED).
_NONE_STORED = "SELECT * FROM {order} o WHERE false"
_FIRST_ROWS_STORED = "SELECT EXISTS (SELECT 1 FROM ({rows} LIMIT 8) s JOIN {order} o ON o.external_id = s.external_id)"
# A part's rows hold each external_id once: its new rows with a customer are all first. They come in the
# file's order (the pages' order), in which the orders' indexes fill fastest, as with a COPY of the file.
_PART_FIRST = "NOT MATERIALIZED (SELECT * FROM s WHERE customer_id IS NOT NULL AND NOT present)"
_PART_TWINS = ""
# The later rows may hold an external_id many times: the file's first row with a customer wins, and the rows
# after it that differ from it are refused.
_LATER_FIRST = (
    "MATERIALIZED (SELECT DISTINCT ON (external_id) * FROM s WHERE customer_id IS NOT NULL AND NOT present"
    " ORDER BY external_id, row)"
)
_LATER_TWINS = (
    "UNION ALL"
    " SELECT s.row, s.external_id, s.customer, s.ordered_at, s.amount, s.currency, s.coupon_code, false,"
    "        f.customer_id, f.ordered_at, f.amount, f.currency, f.coupon_code"
    " FROM s JOIN first f ON f.external_id = s.external_id"
    " WHERE s.customer_id IS NOT NULL AND NOT s.present AND s.row <> f.row"
    "   AND (s.customer_id <> f.customer_id OR s.ordered_at <> f.ordered_at OR s.amount <> f.amount"
    "        OR s.currency <> f.currency OR s.coupon_code <> f.coupon_code)"
)

# The same indexes: the refused rows against what is stored now, when an insert lost a race with a
# concurrent writer of one of its orders (its statement could not see that writer's row). A row that
# created its order, or repeats it exactly, matches the stored order and is not listed.
_REFUSED = (
    "SELECT s.row, s.external_id, s.customer, s.ordered_at, s.amount, coalesce(nullif(s.currency, ''), %(currency)s),"
    "       s.coupon_code, c.id IS NULL, oc.external_id, o.ordered_at, o.amount, o.currency, o.coupon_code"
    " FROM ({rows}) s LEFT JOIN {customer} c ON c.external_id = s.customer"
    " LEFT JOIN {order} o ON o.external_id = s.external_id"
    " LEFT JOIN {customer} oc ON oc.id = o.customer_id"
    " WHERE c.id IS NULL OR o.customer_id <> c.id OR o.ordered_at <> s.ordered_at OR o.amount <> s.amount"
    "    OR o.currency <> coalesce(nullif(s.currency, ''), %(currency)s) OR o.coupon_code <> s.coupon_code"
    " ORDER BY s.row"
)

# Rows are sorted and joined in memory (tens of thousands of rows), not in temporary files.
_MEMORY = "SET LOCAL work_mem = '64MB'"
_MEMORY_END = "SET LOCAL work_mem TO DEFAULT"

# Primary key. crm.sql.MOVE_CUSTOMER_FIGURES's moves, once per customer for the whole run. The customers are
# taken in id order (the sorted totals, each looked up by its primary key: _IN_ORDER), so a concurrent writer
# of the same customers (the API, another import's finish) queues up instead of deadlocking, without a
# separate locking pass over a hundred thousand rows.
_FINISH_MOVE = (
    CUSTOMER_FIGURES_MOVE +
    " FROM (SELECT customer_id, sum(n) AS n, sum(s) AS s, min(mn) AS mn, max(mx) AS mx FROM {delta}"
    "       GROUP BY customer_id ORDER BY customer_id) d"
    " WHERE c.id = d.customer_id"
    " RETURNING c.id"
)
_IN_ORDER = "SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off"
_IN_ORDER_END = "SET LOCAL enable_hashjoin TO DEFAULT; SET LOCAL enable_mergejoin TO DEFAULT"
_TABLE_EXISTS = "SELECT to_regclass(%s) IS NOT NULL"


def _statement(template: str, **parts: Any) -> sql.Composed:
    return compose(template, order=Order, customer=Customer, **parts)


def _stage_names(stage: str) -> dict[str, sql.Identifier]:
    return {"stage": sql.Identifier(stage), "later": sql.Identifier(stage + "_later"),
            "delta": sql.Identifier(stage + "_delta")}


# --- Reading the file ----------------------------------------------------------------------------------

# A row of plain ASCII in the usual shapes is checked by this one pattern and copied as it is; any other row
# (quotes, spaces around values, other alphabets, a date without an offset, a lower-case currency, an error)
# goes through order_input_parse, the API's own validation, which says what is wrong or normalises it.
_PRINTABLE = r"[!-\[\]-~]"  # ASCII without space, backslash (COPY's escape) and control characters
_TEXT = rf"{_PRINTABLE}(?:[ !-\[\]-~]*{_PRINTABLE})?"
_FAST_ROW = re.compile(
    rf"(?P<external_id>{_PRINTABLE}(?:[ !-\[\]-~]{{0,62}}{_PRINTABLE})?)\t"
    rf"(?P<customer>{_TEXT})\t"
    r"(?P<ordered_at>\d{4}-\d\d-\d\d[T ]\d\d:\d\d(?::\d\d(?:\.\d{1,6})?)?(?:Z|[+-](?:0\d|1[0-5]):[0-5]\d))\t"
    r"(?P<amount>\d{1,10}(?:\.\d{1,2})?)\t"
    r"(?P<currency>[A-Z]{3}|)\t"
    rf"(?P<coupon_code>(?:{_PRINTABLE}(?:[ !-\[\]-~]{{0,62}}{_PRINTABLE})?)?)"
)


def _copy_text(value: str) -> str:
    # COPY's text format: backslash, tab and line breaks are escaped.
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


class _Rows:
    """The file's records as staging lines (PostgreSQL COPY text) or parsed rows, and its rejected rows.

    ``errors`` receives (row, column, reason) in row order; ``rows`` counts the records read."""

    def __init__(self, stream: io.TextIOBase, errors: Any) -> None:
        self.reader = csv.reader(stream)
        self.names = header_read(self.reader, required=ORDER_REQUIRED, columns=ORDER_REQUIRED + ORDER_OPTIONAL)
        # Where each staging column is in the file's rows (None: the column is absent, so blank).
        self.positions = [self.names.index(c) if c in self.names else None for c in STAGE_COLUMNS]
        self.canonical = self.positions == list(range(len(STAGE_COLUMNS)))
        self.errors = errors
        self.rows = 0
        self.rejected = 0
        self.head: list[list[Any]] = []  # the first rejected rows, for the audit record
        self.staged = 0
        self.later = 0
        # Few, normally (repeats, and the bit array's false alarms): in a file, so that a file of repeats
        # costs no memory. Made by copy_lines; its caller closes it.
        self.later_lines: Any = None
        self.earliest = EARLIEST_BUSINESS_DATETIME
        self.latest = latest_business_datetime()

    def _reject(self, row: int, problems: dict[str, str]) -> None:
        self.rejected += 1
        for column, reason in problems.items():
            self.errors.writerow((row, column, reason))
            if len(self.head) < AUDIT_ERRORS:
                self.head.append([row, column, reason])

    def records(self) -> Iterator[tuple[int, list[str]]]:
        width = len(self.names)
        row = 1
        while True:
            row += 1
            try:
                values = next(self.reader)
            except StopIteration:
                return
            except csv.Error as exc:
                self.rows += 1
                self._reject(row, {"": gettext("Not valid CSV: %(why)s.") % {"why": exc}})
                continue
            if not values or values == [""]:
                continue  # a blank line holds nothing to import (but is still a spreadsheet row)
            self.rows += 1
            if len(values) != width:
                self._reject(row, {"": width_error(width, len(values))})
                continue
            yield row, values

    def _parsed(self, row: int, values: list[str]) -> OrderInput | None:
        record = dict(zip(self.names, values))
        if why := undecodable_error(record):
            self._reject(row, {"": why})
            return None
        item, problems = order_input_parse(record)
        if problems:
            self._reject(row, problems)
            return None
        return item

    def copy_lines(self) -> Iterator[str]:
        """Staging lines: row, external_id, customer, ordered_at, amount, currency ("" = the default),
        coupon_code. The later rows' lines go to ``later_lines``; ``staged`` and ``later`` count them."""
        fast = _FAST_ROW.fullmatch
        earliest, latest = self.earliest, self.latest
        parse = dt.datetime.fromisoformat
        seen = bytearray(SEEN_BITS // 8)
        mask = SEEN_BITS - 1
        self.later_lines = tempfile.TemporaryFile("w+", encoding="utf-8")
        for row, values in self.records():
            text = "\t".join(values) if self.canonical else "\t".join(
                "" if p is None else values[p] for p in self.positions)
            line = None
            if fast(text) is not None:
                external_id, _, when, _ = text.split("\t", 3)
                try:
                    if earliest <= parse(when) <= latest:
                        line = text
                except ValueError:  # 2025-02-30 has the shape but is no date: order_input_parse says so
                    pass
            if line is None:
                item = self._parsed(row, values)
                if item is None:
                    continue
                external_id = item.external_id
                line = "\t".join((_copy_text(external_id), _copy_text(item.customer), item.ordered_at.isoformat(),
                                  str(item.amount), item.currency, _copy_text(item.coupon_code)))
            bit = hash(external_id) & mask
            if seen[bit >> 3] & (1 << (bit & 7)):
                self.later += 1
                self.later_lines.write(f"{row}\t{line}\n")
            else:
                seen[bit >> 3] |= 1 << (bit & 7)
                self.staged += 1
                yield f"{row}\t{line}\n"

    def items(self) -> Iterator[tuple[int, OrderInput]]:
        for row, values in self.records():
            item = self._parsed(row, values)
            if item is not None:
                yield row, item


# --- The caller's side ---------------------------------------------------------------------------------

def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(COPY_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def orders_import(
    *, path: Path, actor: Actor, report_path: Path, batch_size: int = 5000, inline: bool = True,
    progress: bool = False,
) -> ImportResult:
    """Import an orders file as a batch run: in this process (``inline``) or on the workers (waits for them).

    Rejected rows go to ``report_path`` (row, column, reason; in row order). Raises ImportFileError, with
    nothing written, when the header is wrong; core.batches.BatchRunFailed when a part or the finish failed."""
    params: dict[str, Any] = {"import": "orders", "file": path.name, "sha256": file_sha256(path),
                              "report": str(report_path), "actor": actor.label}
    with tempfile.TemporaryFile("w+", newline="", encoding="utf-8") as early:
        errors = csv.writer(early)
        with open(path, "rb") as raw, tqdm(total=path.stat().st_size, unit="B", unit_scale=True, desc="read orders",
                                           disable=not progress, leave=False) as bar:
            # utf-8-sig drops a byte-order mark; newline="" lets the csv module see quoted line breaks; bytes that
            # are not UTF-8 become lone surrogates, so the row that holds them is reported and the rest is read.
            stream = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")
            rows = _Rows(stream, errors)  # the header is checked here: a bad one raises, nothing written
            if is_postgresql():
                parts = _stage(rows, bar=bar, raw=raw, rows_per_part=batch_size, params=params)
            else:
                parts = [{"rows": [[row, i.external_id, i.customer, i.ordered_at.isoformat(), str(i.amount), i.currency,
                                    i.coupon_code] for row, i in chunk]}
                         for chunk in _chunked(rows.items(), batch_size)] or [{"rows": []}]
                bar.update(raw.tell() - bar.n)
            stream.detach()
        params.update(rows=rows.rows, rejected_early=rows.rejected, errors_early=rows.head)
        try:
            run = batch_run_start(kind=KIND, parts=parts, params=params, label=f"import orders {path.name}"[:200],
                                  inline=inline, user=actor.user, progress=progress)
            if not inline:
                run = batch_run_wait(run=run, progress=progress, poll_seconds=0.2)
        except BatchRunFailed as exc:
            _salvage(exc.run)
            raise
        early.seek(0)
        return _result(run, early=csv.reader(early), report_path=report_path, rows=rows)


def _chunked(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    while chunk := list(itertools.islice(items, size)):
        yield chunk


def _stage(rows: _Rows, *, bar: tqdm, raw: Any, rows_per_part: int, params: dict[str, Any]) -> list[dict]:
    """COPY the file's good rows into a new staging table; the parts are ranges of its pages."""
    stage = "crm_import_" + uuid.uuid4().hex[:16]
    names = _stage_names(stage)
    params["stage"] = stage
    with connection.cursor() as cursor:
        cursor.execute(_statement(_CREATE_STAGE, table=names["stage"]))
        cursor.execute(_statement(_CREATE_STAGE, table=names["later"]))
        cursor.execute(_statement(_CREATE_DELTA, **names))
        try:
            with transaction.atomic(), connection.wrap_database_errors:
                with cursor.cursor.copy(_statement(_COPY_STAGE, table=names["stage"])) as copy:
                    lines = rows.copy_lines()
                    while block := list(itertools.islice(lines, COPY_LINES)):
                        copy.write("".join(block))
                        bar.update(raw.tell() - bar.n)
                rows.later_lines.seek(0)
                with cursor.cursor.copy(_statement(_COPY_STAGE, table=names["later"])) as copy:
                    while block := rows.later_lines.read(COPY_BLOCK):
                        copy.write(block)
            bar.update(raw.tell() - bar.n)
            cursor.execute(_STAGE_PAGES, [stage])
            pages = cursor.fetchone()[0]
        except BaseException:
            _stage_drop_after_failure(stage)
            raise
        finally:
            if rows.later_lines is not None:
                rows.later_lines.close()
    params["later"] = rows.later
    count = max(1, math.ceil(rows.staged / max(1, rows_per_part)))
    bounds = [index * pages // count for index in range(count)] + [2**32 - 1]  # the last: every page after
    return [{"stage": stage, "lo": f"({bounds[i]},0)", "hi": f"({bounds[i + 1]},0)"} for i in range(count)]


def _salvage(run: BatchRun) -> None:
    """After a failed run: the orders of the parts done keep their customers' figures, and the staging tables
    go. Importing the file again adds the rest (a failed run is not resumed)."""
    try:
        with transaction.atomic():
            stage = run.params.get("stage")
            if stage:
                if not _stage_exists(stage):
                    return
                with connection.cursor() as cursor:
                    # Waits for a part still running on a worker; one not started yet then finds no table.
                    cursor.execute(_statement(_LOCK_DELTA, **_stage_names(stage)))
                customer_ids = _figures_move_postgresql(stage=stage, now=timezone.now())
                _stage_drop(stage)
            else:
                done = run.parts.filter(done_at__isnull=False).values_list("result", flat=True)
                customer_ids = _figures_move_generic([r or {} for r in done], now=timezone.now())
            if customer_ids:
                history_changed.send(sender=Order, customer_ids=customer_ids)
    except Exception:  # noqa: BLE001 - the run's own failure is the one to report
        log.exception("could not settle the failed import run %s", run.pk)


def _stage_drop(stage: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(_statement(_DROP_STAGE, **_stage_names(stage)))


def _stage_drop_after_failure(stage: str) -> None:
    try:
        _stage_drop(stage)
    except Exception:  # noqa: BLE001 - the failure being raised is the one to report
        log.exception("could not drop the staging tables %s", stage)


def _result(run: BatchRun, *, early: Iterator[list[str]], report_path: Path, rows: _Rows) -> ImportResult:
    """The counts, and the report: the rows rejected while reading merged with those the run refused."""
    result = ImportResult(kind="orders", rows=rows.rows, created=run.result.get("created", 0),
                          unchanged=run.result.get("unchanged", 0), rejected=run.result.get("rejected", 0),
                          report_path=report_path)
    refused = [part.get("errors", []) for part in run.parts.order_by("index").values_list("result", flat=True) if part]
    refused.append(run.result.get("later_errors", []))
    with open(report_path, "w", newline="", encoding="utf-8") as f:
        report = csv.writer(f)
        report.writerow(["row", "column", "reason"])
        merged = heapq.merge(((int(r), c, why) for r, c, why in early), *(map(tuple, e) for e in refused),
                             key=lambda line: line[0])
        report.writerows(merged)
    return result


# --- The parts (workers or inline) ---------------------------------------------------------------------

def import_orders_part(*, run: BatchRun, params: dict[str, Any]) -> dict[str, Any]:
    if "stage" in params:
        rows = _statement(_PART_ROWS, **_stage_names(params["stage"]))
        return _write_postgresql(run=run, stage=params["stage"], rows=rows, bounds=params, repeats=False)
    return _part_generic(run=run, rows=params["rows"])


def _write_postgresql(
    *, run: BatchRun, stage: str, rows: sql.Composed, bounds: dict[str, Any], repeats: bool,
) -> dict[str, Any]:
    """Write the new orders among ``rows`` (a part's, or the later rows, which may repeat an external_id);
    their counts and refused rows."""
    names = {**_stage_names(stage), "rows": rows, "first": _LATER_FIRST if repeats else _PART_FIRST,
             "twins": _LATER_TWINS if repeats else _PART_TWINS}
    values = {"currency": settings.DEFAULT_CURRENCY, "now": timezone.now(), "run": run.pk,
              "lo": bounds.get("lo"), "hi": bounds.get("hi")}
    written = None
    with connection.cursor() as cursor:
        cursor.execute(_MEMORY)
        attempts = [(_STORED, ""), (_STORED, ON_CONFLICT)]
        if not repeats:
            cursor.execute(_statement(_FIRST_ROWS_STORED, **names), values)
            if not cursor.fetchone()[0]:
                attempts.insert(0, (_NONE_STORED, ""))
        for stored, on_conflict in attempts:
            statement = _statement(_WRITE, stored=_statement(stored), on_conflict=on_conflict, **names)
            try:
                with transaction.atomic():  # a savepoint: a unique violation leaves nothing behind
                    cursor.execute(statement, values)
                    written = cursor.fetchall()
                break
            except IntegrityError:
                if on_conflict:
                    raise  # not a stored order's external_id (ON CONFLICT takes those): a real error
        *refused, (*_, created, candidates, staged) = sorted(written, key=lambda r: (r[0] is None, r[0] or 0))
        if created != candidates:
            cursor.execute(_statement(_REFUSED, **names), values)
            refused = cursor.fetchall()
        cursor.execute(_MEMORY_END)  # for what else runs in this transaction (an inline run inside another)
    errors = []
    for row, external_id, customer, *rest in refused:
        given, unknown, prior_customer, prior = rest[:4], rest[4], rest[5], rest[6:10]
        if unknown:
            errors.append([row, "customer", gettext("No customer with external_id '%(id)s'.") % {"id": customer}])
        else:
            errors.append([row, "external_id", _conflict_message(
                prior=OrderInput(external_id, prior_customer, *prior), item=OrderInput(external_id, customer, *given))])
    return {"created": created, "unchanged": staged - created - len(errors), "errors": errors}


def _conflict_message(*, prior: OrderInput, item: OrderInput) -> str:
    return gettext("Order '%(id)s' already exists with different data (%(fields)s); orders are immutable.") % {
        "id": item.external_id, "fields": _differences(prior, item)}


def _part_generic(*, run: BatchRun, rows: list[list[Any]]) -> dict[str, Any]:
    """One part on a database without the staging path: the API's classification, then bulk_create."""
    items = [(row, OrderInput(e, c, dt.datetime.fromisoformat(at), Decimal(amount), cur, coupon))
             for row, e, c, at, amount, cur, coupon in rows]
    customer_ids = dict(Customer.objects.filter(external_id__in={i.customer for _, i in items})
                        .values_list("external_id", "id"))
    known = {r[0]: OrderInput(*r) for r in Order.objects.filter(external_id__in=[i.external_id for _, i in items])
             .values_list("external_id", "customer__external_id", "ordered_at", "amount", "currency", "coupon_code")}
    errors: list[list[Any]] = []
    new: list[OrderInput] = []
    unchanged = 0
    for row, item in items:
        if item.customer not in customer_ids:
            errors.append([row, "customer", gettext("No customer with external_id '%(id)s'.") % {"id": item.customer}])
        elif (prior := known.get(item.external_id)) is None:
            known[item.external_id] = item
            new.append(item)
        elif prior.same_as(item):
            unchanged += 1
        else:
            errors.append([row, "external_id", _conflict_message(prior=prior, item=item)])
    now = timezone.now()
    Order.objects.bulk_create([
        Order(external_id=i.external_id, customer_id=customer_ids[i.customer], ordered_at=i.ordered_at, amount=i.amount,
              currency=i.currency, coupon_code=i.coupon_code, created_at=now, import_run_id=run.pk)
        for i in new], batch_size=1000)
    deltas: dict[str, list[Any]] = {}
    for item in new:
        d = deltas.setdefault(str(customer_ids[item.customer]), [0, "0", item.ordered_at, item.ordered_at])
        d[0] += 1
        d[1] = str(Decimal(d[1]) + item.amount)
        d[2], d[3] = min(d[2], item.ordered_at), max(d[3], item.ordered_at)
    return {"created": len(new), "unchanged": unchanged, "errors": errors,
            "deltas": {k: [n, s, mn.isoformat(), mx.isoformat()] for k, (n, s, mn, mx) in deltas.items()}}


# --- The finish ----------------------------------------------------------------------------------------

def import_orders_finish(*, run: BatchRun, results: list[dict[str, Any]]) -> dict[str, Any]:
    stage = run.params.get("stage")
    now = timezone.now()
    later: dict[str, Any] = {}
    if stage and _stage_exists(stage):  # not when finished before: its work was done then
        later = _write_postgresql(run=run, stage=stage, rows=_statement(_LATER_ROWS, **_stage_names(stage)), bounds={},
                                  repeats=True)
        customer_ids = _figures_move_postgresql(stage=stage, now=now)
    else:
        customer_ids = [] if stage else _figures_move_generic(results, now=now)
    everything = [*results, later]
    counts = {
        "rows": run.params.get("rows", 0),
        "created": sum(r.get("created", 0) for r in everything),
        "unchanged": sum(r.get("unchanged", 0) for r in everything),
        "rejected": run.params.get("rejected_early", 0) + sum(len(r.get("errors", [])) for r in everything),
        "customers": len(customer_ids),
    }
    if customer_ids:
        history_changed.send(sender=Order, customer_ids=customer_ids)
    if counts["created"]:
        errors = sorted(run.params.get("errors_early", []) + [e for r in everything for e in r.get("errors", [])])
        audit_record(actor=Actor(user=run.created_by, label=run.params.get("actor", "import")[:150]),
                     action=AuditEntry.Action.CREATE, instance=run, customer=None, changes={
                         "import": "orders", "file": run.params.get("file"), "sha256": run.params.get("sha256"),
                         **counts, "report": run.params.get("report"), "errors": errors[:AUDIT_ERRORS]})
    if stage:
        _stage_drop(stage)
    # The later rows' refusals go to the caller's report with the parts'.
    return {**counts, "later_errors": later.get("errors", [])}


def _stage_exists(stage: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(_TABLE_EXISTS, [stage + "_delta"])
        return cursor.fetchone()[0]


def _figures_move_postgresql(*, stage: str, now: dt.datetime) -> list[int]:
    names = _stage_names(stage)
    with connection.cursor() as cursor:
        cursor.execute(_IN_ORDER)
        cursor.execute(_MEMORY)  # the totals of every customer of the run, summed and sorted in memory
        cursor.execute(_statement(_FINISH_MOVE, **names), [now])
        moved = sorted(row[0] for row in cursor.fetchall())
        cursor.execute(_IN_ORDER_END)
        cursor.execute(_MEMORY_END)
        return moved


def _figures_move_generic(results: list[dict[str, Any]], *, now: dt.datetime) -> list[int]:
    totals: dict[int, list[Any]] = {}
    for result in results:
        for key, (n, s, mn, mx) in result.get("deltas", {}).items():
            mn, mx = dt.datetime.fromisoformat(mn), dt.datetime.fromisoformat(mx)
            t = totals.setdefault(int(key), [0, Decimal("0"), mn, mx])
            t[0] += n
            t[1] += Decimal(s)
            t[2], t[3] = min(t[2], mn), max(t[3], mx)
    for customer_id in sorted(totals):
        n, s, mn, mx = totals[customer_id]
        Customer.objects.filter(pk=customer_id).update(
            order_count=F("order_count") + n, total_spent=F("total_spent") + s,
            last_order_at=Greatest(Coalesce(F("last_order_at"), Value(mx)), Value(mx)),
            acquired_at=Least(Coalesce(F("acquired_at"), Value(mn)), Value(mn)),
            history_version=F("history_version") + 1, updated_at=now)
        Customer.objects.filter(pk=customer_id, status=Customer.Status.PROSPECT).update(status=Customer.Status.ACTIVE)
    return sorted(totals)


def import_orders_register() -> None:
    batch_kind_register(BatchKind(name=KIND, run_part=import_orders_part, finish=import_orders_finish))
