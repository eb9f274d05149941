"""Raw SQL on Django's connection for the few hot paths where the ORM's per-query cost matters."""

import functools
import time
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import psycopg
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Field, Model

M = TypeVar("M", bound=Model)


def fetch_all(sql: str, params: Mapping[str, Any] | Sequence[Any]) -> list[tuple]:
    """Run one statement that returns rows (a SELECT, or a write with RETURNING) and return them.

    On PostgreSQL the statement is a server-side prepared statement, planned once per connection (the
    queue's claim takes longer to plan than to run), with results in binary. Elsewhere it goes through
    Django's cursor. Errors are Django's (IntegrityError, ...) either way.
    """
    connection = connections[DEFAULT_DB_ALIAS]  # once: every attribute of the proxy is a thread-local lookup
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    # What Django's cursor() does before handing out a cursor, without building one per call.
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    connection.validate_no_broken_transaction()
    raw = connection.connection
    cursor = getattr(raw, "_fetch_all_cursor", None)
    if cursor is None:
        cursor = raw._fetch_all_cursor = psycopg.Cursor(raw)
    started = time.monotonic()
    try:
        with connection.wrap_database_errors:
            cursor.execute(sql, params, prepare=True, binary=True)
            return cursor.fetchall()
    finally:
        if connection.queries_logged:  # as Django's debug cursor does: assertNumQueries, the debug toolbar
            connection.queries_log.append({"sql": f"{sql} -- {params!r}", "time": f"{time.monotonic() - started:.3f}"})


@functools.cache
def columns(model: type[Model], alias: str = "") -> str:
    """The model's concrete columns in field order, for a SELECT or RETURNING list (see instances())."""
    quote = connections[DEFAULT_DB_ALIAS].ops.quote_name
    prefix = f"{alias}." if alias else ""
    return ", ".join(f"{prefix}{quote(f.column)}" for f in model._meta.concrete_fields)


def instances(model: type[M], rows: Sequence[Sequence[Any]], *, start: int = 0) -> list[M]:
    """Model instances from raw rows whose columns, from ``start``, are columns(model).

    Values go through the same converters the ORM applies (SQLite hands back text for dates and floats
    for decimals), so the instances are what a queryset would have built.
    """
    connection = connections[DEFAULT_DB_ALIAS]
    names, converters = _converters(model, connection.vendor)
    width = len(names)
    out = []
    for row in rows:
        values = list(row[start:start + width])
        for i, col, convs in converters:
            for convert in convs:
                values[i] = convert(values[i], col, connection)
        out.append(model.from_db(connection.alias, names, values))
    return out


def field_value(field: Field, value: Any) -> Any:
    """A raw value read for ``field`` (an aggregate of its column, say) as the ORM would return it."""
    connection = connections[DEFAULT_DB_ALIAS]
    col, convs = _field_converters(field, connection)
    for convert in convs:
        value = convert(value, col, connection)
    return value


def _field_converters(field: Field, connection) -> tuple[Any, list]:
    # What the ORM's compiler applies to a column it selected: the backend's converters, then the field's.
    col = field.get_col(field.model._meta.db_table)
    return col, connection.ops.get_db_converters(col) + col.get_db_converters(connection)


@functools.cache
def _converters(model: type[Model], vendor: str) -> tuple[list[str], list[tuple[int, Any, list]]]:
    connection = connections[DEFAULT_DB_ALIAS]
    fields = model._meta.concrete_fields
    converters = []
    for i, field in enumerate(fields):
        col, convs = _field_converters(field, connection)
        if convs:
            converters.append((i, col, convs))
    return [f.attname for f in fields], converters


def transaction_lock(key: int) -> None:
    """Serialise writers of one kind until the current transaction ends (a PostgreSQL advisory lock).

    SQLite needs none: its transactions here are IMMEDIATE, so writers already queue one at a time."""
    connection = connections[DEFAULT_DB_ALIAS]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])
