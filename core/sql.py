"""SQL statements composed with psycopg.sql: table and column names come from the models, never spliced text.

Each app keeps its hand-written statements as named constants (crm/sql.py, winback/services/cases.py, ...),
rendered once to text with ``render``: Django's cursors on PostgreSQL and SQLite both take the text (double
quoted identifiers are standard SQL), and core.db.fetch_all prepares it on PostgreSQL.
"""

from typing import Any

from django.db.models import Model
from psycopg import sql


def table(model: type[Model]) -> sql.Identifier:
    return sql.Identifier(model._meta.db_table)


def column_list(model: type[Model], alias: str = "") -> sql.Composed:
    """The model's concrete columns in field order (what core.db.instances reads back)."""
    names = [sql.Identifier(*((alias, f.column) if alias else (f.column,))) for f in model._meta.concrete_fields]
    return sql.SQL(", ").join(names)


def _part(value: Any) -> sql.Composable:
    if isinstance(value, type) and issubclass(value, Model):
        return table(value)
    if isinstance(value, str):
        return sql.SQL(value)
    return value


def compose(template: str, **parts: Any) -> sql.Composed:
    """``template`` with its {placeholders} filled: a model becomes its table, a str plain SQL text
    (a fixed fragment of the caller's, never a value), a psycopg Composable itself. Parts the template
    does not name are ignored, so a module can pass all its tables to every statement."""
    return sql.SQL(template).format(**{name: _part(value) for name, value in parts.items()})


def render(template: str, **parts: Any) -> str:
    """compose() as the text a cursor takes."""
    return compose(template, **parts).as_string(None)
