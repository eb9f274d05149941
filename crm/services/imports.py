"""CSV import of customers, orders, order lines, complaints and feedback.

The file is read as a stream (constant memory, whatever its size). Every row is validated; rejected rows go
to an error report (row, column, reason) and the good rows are committed in batches, each batch in its own
transaction. A row is never half-written: order lines are classified before anything is written, and the
other kinds write each row in a savepoint. Orders are a batch run of their own, on the workers or inline
(crm/services/import_orders.py), with one audit record per run. Re-importing a file adds nothing: every row
has an external_id, a repeat is left alone (customers and complaints are updated to what the file says,
orders and survey answers never change).

Row numbers are spreadsheet rows: the header is row 1, the first record row 2 (a quoted field with line
breaks still counts as one row).
"""

import csv
import io
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext
from tqdm import tqdm

from crm.inputs import ComplaintSerializer, CustomerInputSerializer, FeedbackSerializer
from crm.models import Complaint, Feedback
from crm.services.audit import Actor
from crm.services.customers import customer_upsert
from crm.services.errors import ConflictError
from crm.services.import_orders import ORDER_OPTIONAL, ORDER_REQUIRED, orders_import
from crm.services.import_rows import (
    ImportFileError, ImportResult, header_read, undecodable_error, width_error,
)
from crm.services.orders import (
    OrderInput, OrderLineInput, order_input_parse, order_line_parse, order_lines_insert,
)
from crm.services.records import record_upsert
from crm.services.spend import spend_clean, spend_upsert

ORDER_COLUMNS = ("external_id", "customer", "ordered_at", "amount", "currency", "coupon_code")


@dataclass(frozen=True)
class ImportKind:
    required: tuple[str, ...]
    optional: tuple[str, ...]
    parse: Callable[[dict[str, str]], tuple[Any, dict[str, str]]]
    # Writes one batch of (row number, parsed row); returns outcomes, the rejected rows' {row: {column: reason}}
    # and the notes on rows written with a value kept ({row: {column: why}}). None: the kind has its own
    # driver (orders: a batch run).
    write: Callable[[Actor, list[tuple[int, Any]]], "WriteResult"] | None
    # A parse that never touches the database may run in a thread beside the writes (order lines).
    parse_in_thread: bool = False
    # Rows written together (an order's lines): the raw row's group. A batch is never cut inside a run of
    # rows of one group, and a group's rejected rows still reach the write (as a parsed item with
    # ``rejected`` set), which then refuses the whole group.
    group_key: Callable[[dict[str, str]], str] | None = None
    columns: tuple[str, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", self.required + self.optional)


# --- Parsing -----------------------------------------------------------------------------------------

def _given(row: dict[str, str]) -> dict[str, str]:
    # A blank cell means "not given", so a file with fewer facts never erases what is known.
    return {k: v for k, v in row.items() if v is not None and v.strip() != ""}


def _serializer_parse(serializer_class: type, require_external_id: bool = True) -> Callable:
    def parse(row: dict[str, str]) -> tuple[Any, dict[str, str]]:
        data = _given(row)
        serializer = serializer_class(data=data)
        errors: dict[str, str] = {}
        if not serializer.is_valid():
            errors = {f: " ".join(map(str, m)) for f, m in serializer.errors.items()}
        if require_external_id and not data.get("external_id"):
            errors["external_id"] = gettext("Required in an import, so that importing the file again adds nothing.")
        return (None, errors) if errors else (serializer.validated_data, {})

    return parse


def _parse_order(row: dict[str, str]) -> tuple[OrderInput | None, dict[str, str]]:
    return order_input_parse(row)


@dataclass(frozen=True)
class LineRow:
    order: str
    line: OrderLineInput | None  # None: the row was rejected
    rejected: bool = False


def _order_key(row: dict[str, str]) -> str:
    return (row.get("order") or "").strip()


def _parse_order_line(row: dict[str, str]) -> tuple[LineRow, dict[str, str]]:
    line, errors = order_line_parse(row)
    if not _order_key(row):
        errors["order"] = gettext("This field is required (the order's external_id).")
    return LineRow(_order_key(row), None if errors else line, rejected=bool(errors)), errors


def _parse_spend(row: dict[str, str]) -> tuple[dict[str, Any] | None, dict[str, str]]:
    try:
        return spend_clean(month=row.get("month"), channel=row.get("channel"), amount=row.get("amount"),
                           currency=row.get("currency")), {}
    except ValidationError as exc:
        return None, {f: " ".join(m) for f, m in exc.message_dict.items()}


# --- Writing -----------------------------------------------------------------------------------------

RowNotes = dict[int, dict[str, str]]
WriteResult = tuple[dict[str, int], RowNotes, RowNotes]  # (outcome counts, rejected rows, kept-value notes)


def _write_order_lines(actor: Actor, batch: list[tuple[int, LineRow]]) -> WriteResult:
    """An order's rows make one group: written whole or not at all (see order_lines_insert)."""
    groups: dict[str, list[tuple[int, LineRow]]] = {}
    for row_number, row in batch:
        groups.setdefault(row.order, []).append((row_number, row))
    errors: RowNotes = {}
    good: list[tuple[str, list[int]]] = []
    for order, rows in groups.items():
        if any(row.rejected for _, row in rows):
            for row_number, row in rows:
                if not row.rejected:  # the rejected row has its own reason already
                    errors[row_number] = {"order": gettext(
                        "Not imported: another line of order '%(id)s' was rejected, and an order's lines are "
                        "imported together or not at all.") % {"id": order}}
        else:
            good.append((order, [row_number for row_number, _ in rows]))
    result = order_lines_insert(groups=[(order, tuple(row.line for _, row in groups[order])) for order, _ in good])
    for error in result.errors:
        for row_number in good[error["index"]][1]:
            errors[row_number] = {error["field"]: error["message"]}
    return ({"created": sum(len(good[i][1]) for i in result.created),
             "unchanged": sum(len(good[i][1]) for i in result.existing)}, errors, {})


def _row_by_row(upsert: Callable[[Actor, dict[str, Any], dict[str, str]], str]) -> Callable:
    def write(actor: Actor, batch: list[tuple[int, dict[str, Any]]]) -> WriteResult:
        counts = {"created": 0, "updated": 0, "unchanged": 0}
        errors: RowNotes = {}
        notes: RowNotes = {}
        for row_number, data in batch:
            kept: dict[str, str] = {}
            try:
                with transaction.atomic():  # a savepoint: a failing row leaves no trace
                    counts[upsert(actor, data, kept)] += 1
                if kept:
                    notes[row_number] = kept
            except ConflictError as exc:
                errors[row_number] = {exc.field: exc.message}
            except ValidationError as exc:
                errors[row_number] = (
                    {f: " ".join(m) for f, m in exc.message_dict.items()}
                    if hasattr(exc, "error_dict") else {"": " ".join(exc.messages)}
                )
        return counts, errors, notes

    return write


KINDS: dict[str, ImportKind] = {
    "customers": ImportKind(
        required=("external_id", "name"),
        optional=("email", "phone", "timezone", "locale", "acquired_at", "email_consent",
                  "email_consent_at", "email_consent_source", "do_not_call"),
        parse=_serializer_parse(CustomerInputSerializer),
        write=_row_by_row(lambda actor, data, kept: customer_upsert(actor=actor, data=data, kept=kept)[0]),
    ),
    # Read and written as a batch run by crm/services/import_orders.py (csv_import hands it over): this entry
    # gives its columns and the row parser only.
    "orders": ImportKind(
        required=ORDER_REQUIRED,
        optional=ORDER_OPTIONAL,
        parse=_parse_order,
        write=None,
    ),
    # Lines for stored orders: an order's rows (grouped by order, in the file's order) are its lines 1..n.
    # They must sum to the order's amount; they are written only to an order without lines, and the same
    # lines again are unchanged. An order's rows should be next to each other: a run of rows cut by rows of
    # other orders more than a batch apart is read as a second set of lines (refused, the order has lines).
    "order_lines": ImportKind(
        required=("order", "product_id", "amount"),
        optional=("product_name", "category", "quantity"),
        parse=_parse_order_line,
        write=_write_order_lines,
        parse_in_thread=True,
        group_key=_order_key,
    ),
    "complaints": ImportKind(
        required=("external_id", "customer", "opened_at", "summary"),
        optional=("category", "severity", "status", "resolved_at", "resolution", "owner"),
        parse=_serializer_parse(ComplaintSerializer),
        write=_row_by_row(lambda actor, data, kept: record_upsert(actor=actor, model=Complaint, data=data, mutable=True)[0]),
    ),
    "feedback": ImportKind(
        required=("external_id", "customer", "kind", "score", "responded_at"),
        optional=("comment",),
        parse=_serializer_parse(FeedbackSerializer),
        write=_row_by_row(lambda actor, data, kept: record_upsert(actor=actor, model=Feedback, data=data, mutable=False)[0]),
    ),
    # Keyed by (month, channel): a row again with the same amount is unchanged, with another amount updated.
    "spend": ImportKind(
        required=("month", "amount"),
        optional=("channel", "currency"),
        parse=_parse_spend,
        write=_row_by_row(lambda actor, data, kept: spend_upsert(actor=actor, **data)[1]),
    ),
}


# --- The driver --------------------------------------------------------------------------------------

def _records(stream: io.TextIOBase, spec: ImportKind) -> Iterator[tuple[int, dict[str, str] | None, str]]:
    """Yield (row number, {column: value}, "") or, for a row that is not a record, (row number, None, why)."""
    reader = csv.reader(stream)
    names = header_read(reader, required=spec.required, columns=spec.columns)
    width = len(names)
    row_number = 1
    while True:
        row_number += 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield row_number, None, gettext("Not valid CSV: %(why)s.") % {"why": exc}
            continue
        if not values or values == [""]:
            continue  # a blank line holds nothing to import (but is still a spreadsheet row)
        if len(values) != width:
            yield row_number, None, width_error(width, len(values))
            continue
        row = dict(zip(names, values))
        if why := undecodable_error(row):
            yield row_number, None, why
            continue
        yield row_number, row, ""


Chunk = tuple[list[tuple[int, Any]], dict[int, dict[str, str]], int]  # (good rows, errors by row, rows read)


def _chunks(stream: io.TextIOBase, spec: ImportKind, batch_size: int) -> Iterator[Chunk]:
    batch: list[tuple[int, Any]] = []
    errors: dict[int, dict[str, str]] = {}
    rows = 0
    last_key: str | None = None
    for row_number, row, broken in _records(stream, spec):
        key = spec.group_key(row) if spec.group_key and row is not None else None
        # Cut the batch only between groups, so a group is written whole.
        if (len(batch) >= batch_size or len(errors) >= batch_size) and (key is None or key != last_key):
            yield batch, errors, rows
            batch, errors, rows = [], {}, 0
        last_key = key
        rows += 1
        item, row_errors = spec.parse(row) if row is not None else (None, {"": broken})
        if row_errors:
            errors[row_number] = row_errors
            if spec.group_key and item is not None:
                batch.append((row_number, item))  # so the write refuses the rest of its group
        else:
            batch.append((row_number, item))
    yield batch, errors, rows


def _in_thread(chunks: Iterator[Chunk], depth: int = 2) -> Iterator[Chunk]:
    """Run the producer in a thread, ``depth`` chunks ahead: parsing overlaps the database's work."""
    channel: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for chunk in chunks:
                while not stop.is_set():
                    try:
                        channel.put(chunk, timeout=0.5)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            channel.put(done)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            channel.put(exc)

    thread = threading.Thread(target=produce, name="csv-import-parse", daemon=True)
    thread.start()
    try:
        while (item := channel.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


def csv_import(
    *,
    kind: str,
    path: Path,
    actor: Actor,
    report_path: Path,
    batch_size: int = 5000,
    progress: bool = False,
    inline: bool = True,
) -> ImportResult:
    """Import ``path`` as ``kind``; rejected rows are written to ``report_path`` (row, column, reason).

    Orders are a batch run (crm/services/import_orders.py): its parts run in this process when ``inline``,
    else on the workers while this waits; ``batch_size`` is then about the rows of one part."""
    if kind not in KINDS:
        raise ImportFileError(gettext("Unknown kind '%(kind)s': one of %(kinds)s.") % {"kind": kind, "kinds": ", ".join(KINDS)})
    if kind == "orders":
        return orders_import(path=path, actor=actor, report_path=report_path, batch_size=batch_size, inline=inline,
                             progress=progress)
    spec = KINDS[kind]
    result = ImportResult(kind=kind, report_path=report_path)
    with open(path, "rb") as raw, open(report_path, "w", newline="", encoding="utf-8") as report_file, tqdm(
        total=path.stat().st_size, unit="B", unit_scale=True, desc=f"import {kind}", disable=not progress, leave=False
    ) as bar:
        report = csv.writer(report_file)
        report.writerow(["row", "column", "reason"])
        # utf-8-sig drops a byte-order mark; newline="" lets the csv module see quoted line breaks; bytes that
        # are not UTF-8 become lone surrogates, so the row that holds them is reported and the rest is read.
        stream = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")
        chunks = _chunks(stream, spec, batch_size)
        # The header is checked before any thread starts, so a bad file fails at once with nothing written.
        first = next(chunks)
        rest = _in_thread(chunks) if spec.parse_in_thread else chunks
        for batch, errors, rows in _prepend(first, rest):
            result.rows += rows
            notes: RowNotes = {}
            if batch:
                with transaction.atomic():
                    counts, write_errors, notes = spec.write(actor, batch)
                for name, n in counts.items():
                    setattr(result, name, getattr(result, name) + n)
                for row_number, columns in write_errors.items():
                    errors.setdefault(row_number, {}).update(columns)
            result.rejected += len(errors)
            result.kept += len(notes)
            lines = [(r, c, reason) for r in errors for c, reason in errors[r].items()]
            lines += [(r, c, gettext("Kept (the row's other values were imported): %(why)s") % {"why": why})
                      for r in notes for c, why in notes[r].items()]
            for line in sorted(lines, key=lambda x: x[0]):
                report.writerow(line)
            bar.update(raw.tell() - bar.n)
        stream.detach()
    return result


def _prepend(first: Chunk, rest: Iterator[Chunk]) -> Iterator[Chunk]:
    yield first
    yield from rest
