"""Where PostgreSQL and SQLite differ, and what this project does about it: the one place that says so.

PostgreSQL is the production database; SQLite is the zero-setup default for trying the service out. Most
statements run unchanged on both (SQLite has window functions, UPDATE ... FROM and RETURNING). Where they
cannot:

- Writing a change and its audit rows in one statement (a data-modifying CTE) is PostgreSQL's; SQLite runs
  the change with RETURNING and inserts the rows after it, in the same transaction
  (winback/services/cases.py).
- The lifecycle engine's window-function pass over the order history runs in SQL on PostgreSQL
  (winback/services/lifecycle_sql.py); on SQLite the Python reference implementation
  (winback/services/lifecycle_rules.py) computes the same events, and is the oracle the tests hold the SQL
  to (tests/winback/test_lifecycle_property.py).
- Bulk order writes use COPY on PostgreSQL, bulk_create elsewhere (crm/services/orders.py).
- The queue's claim is one prepared statement with SKIP LOCKED on PostgreSQL; SQLite, one writer at a time,
  claims the first callable candidate of a page (winback/services/cases.py).
- Advisory locks serialise writers on PostgreSQL; SQLite's IMMEDIATE transactions already do
  (core.db.transaction_lock).
"""

import json
from collections.abc import Iterable

from django.db import connection
from psycopg import sql


def is_postgresql() -> bool:
    return connection.vendor == "postgresql"


def id_list_condition(column: str) -> sql.Composable:
    """``column`` (``name`` or ``alias.name``) is one of the ids passed as ``%(ids)s`` (id_list_param):
    an array on PostgreSQL, a JSON list read by json_each on SQLite (one parameter either way, however long)."""
    target = sql.Identifier(*column.split("."))
    if is_postgresql():
        return sql.SQL("{col} = ANY(%(ids)s)").format(col=target)
    return sql.SQL("{col} IN (SELECT value FROM json_each(%(ids)s))").format(col=target)


def id_list_param(ids: Iterable[int]) -> list[int] | str:
    ids = [int(i) for i in ids]
    return ids if is_postgresql() else json.dumps(ids)
