"""Helpers for the bounds of manager-entered numbers: refused everywhere, and rows stored before them.

``legacy_update`` writes a row as a database that predates a CHECK constraint may hold it. On PostgreSQL
the table's CHECK constraints are dropped, the row is written, and they are added back NOT VALID: new rows
are refused again, the old one stays, as after ``ADD CONSTRAINT ... NOT VALID`` on a live table. SQLite
has no NOT VALID; the checks are switched off for the one statement instead.
"""

import contextlib
from collections.abc import Iterator

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, models, transaction
from django.db.migrations.executor import MigrationExecutor


def assert_refused(row: models.Model, field: str) -> None:
    """The model (and so the admin's and the API's forms) refuses the row's value, and so does the database."""
    with pytest.raises(ValidationError) as refused:
        row.full_clean()
    assert field in refused.value.message_dict
    with pytest.raises(IntegrityError), transaction.atomic():
        row.save()


def legacy_update(obj: models.Model, **values) -> models.Model:
    """Give ``obj`` values its constraints refuse today, and reload it."""
    model = type(obj)
    table = connection.ops.quote_name(model._meta.db_table)
    columns = ", ".join(f"{connection.ops.quote_name(model._meta.get_field(f).column)} = %s" for f in values)
    params = [model._meta.get_field(f).get_db_prep_save(v, connection) for f, v in values.items()]
    update = f"UPDATE {table} SET {columns} WHERE id = %s"
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            # ALTER TABLE needs the foreign keys the test's transaction deferred checked first.
            cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cur.execute("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
                        " WHERE conrelid = %s::regclass AND contype = 'c'", [model._meta.db_table])
            checks = cur.fetchall()
            for name, _ in checks:
                cur.execute(f"ALTER TABLE {table} DROP CONSTRAINT {connection.ops.quote_name(name)}")
            cur.execute(update, [*params, obj.pk])
            for name, definition in checks:
                cur.execute(f"ALTER TABLE {table} ADD CONSTRAINT {connection.ops.quote_name(name)} {definition} NOT VALID")
            cur.execute("SET CONSTRAINTS ALL DEFERRED")
        else:
            cur.execute("PRAGMA ignore_check_constraints = ON")
            try:
                cur.execute(update, [*params, obj.pk])
            finally:
                cur.execute("PRAGMA ignore_check_constraints = OFF")
    obj.refresh_from_db()
    return obj


@contextlib.contextmanager
def schema_at(target: tuple[str, str]) -> Iterator:
    """The test database's schema moved back to ``target`` (yields the models as they were then), and
    forward to the latest migrations on leaving, whatever happens inside."""
    MigrationExecutor(connection).migrate([target])
    try:
        yield MigrationExecutor(connection).loader.project_state([target]).apps
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
