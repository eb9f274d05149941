"""The lifecycle engine's statements, named (winback/services/lifecycle.py runs them per batch).

A batch works in temporary tables: lc_customers (the batch's customers: version, computed status, next
crossing), lc_raw (PostgreSQL: the computed events and due instants), lc_events (the events as they should
be) and lc_gone (stored events that no longer hold). The batch is an id list (an incremental scan, a
refresh) or an id range (a full scan); ``statements(by_ids=...)`` renders every statement
for one kind of batch, once. The case changes of a batch are winback/services/cases.py's; the customers'
columns are written by crm (customers_set_lifecycle).
"""

import functools
from dataclasses import dataclass

from psycopg import sql

from core.dialect import id_list_condition
from core.sql import render
from crm.models import Cancellation, Customer, Order
from winback.models import Coupon, LifecycleEvent
from winback.services.lifecycle_rules import PRECEDENCE
from winback.services.lifecycle_sql import EVENTS_SQL, MODEL_RULE_PARTS, RHYTHM_RULE_PARTS

# The status a customer's last event gives (docs/metrics.md s.1).
STATUS_SQL = ("CASE last_kind WHEN 'acquired' THEN 'active' WHEN 'reactivated' THEN 'active'"
              " WHEN 'at_risk' THEN 'at_risk' WHEN 'lapsed' THEN 'lapsed' WHEN 'cancelled' THEN 'cancelled'"
              " ELSE 'prospect' END")
# Events at the same instant: the later in this order wins (lifecycle_rules.PRECEDENCE; metrics uses it too).
PRECEDENCE_SQL = "CASE kind " + " ".join("WHEN '" + kind + "' THEN " + str(rank) for kind, rank in PRECEDENCE.items()) + " END"


def batch_scope(column: str, *, by_ids: bool) -> sql.Composable:
    """``column`` (alias.name) restricted to the batch: its id list (``%(ids)s``) or range (``lo``, ``hi``)."""
    if by_ids:
        return id_list_condition(column)
    return sql.SQL("{col} BETWEEN %(lo)s AND %(hi)s").format(col=sql.Identifier(*column.split(".")))


@dataclass(frozen=True)
class BatchStatements:
    customers: str  # the batch's customers and the history version computed
    customers_locking: str  # PostgreSQL: the same, locking the customers' rows (in id order: no deadlock)
    raw_events: str  # PostgreSQL: every event and due instant of the batch, computed (lifecycle_sql)
    gone: str  # stored events of the batch that no longer hold
    status_changes: str  # how many of the batch's customers change status


@functools.cache
def statements(*, by_ids: bool, model_rule: bool = False) -> BatchStatements:
    def scope(column: str) -> sql.Composable:
        return batch_scope(column, by_ids=by_ids)

    return BatchStatements(
        # Index: the customers' primary key.
        customers=render("INSERT INTO lc_customers (customer_id, version) SELECT cu.id, cu.history_version"
                         " FROM {customer} cu WHERE {scope}", customer=Customer, scope=scope("cu.id")),
        # Two batches covering one customer (a full scan's part and a refresh after an order) take turns on
        # its row; batches of different customers run side by side on the workers. NO KEY: an order's
        # foreign-key check on the customer does not wait for the batch.
        customers_locking=render("INSERT INTO lc_customers (customer_id, version) SELECT cu.id, cu.history_version"
                                 " FROM {customer} cu WHERE {scope} ORDER BY cu.id FOR NO KEY UPDATE",
                                 customer=Customer, scope=scope("cu.id")),
        # Index: order_customer_time serves the window without a sort.
        raw_events=render("INSERT INTO lc_raw (customer_id, kind, occurred_at) " + EVENTS_SQL,
                          order=Order, cancellation=Cancellation, customer=Customer,
                          order_scope=scope("o.customer_id"), customer_scope=scope("cu.id"),
                          **(MODEL_RULE_PARTS if model_rule else RHYTHM_RULE_PARTS)),
        # Index: lifecycle_event_unique (customer, kind, occurred_at).
        gone=render("CREATE TEMP TABLE lc_gone AS"
                    " SELECT e.id FROM {event} e JOIN lc_customers b ON b.customer_id = e.customer_id"
                    " WHERE {scope} AND NOT EXISTS (SELECT 1 FROM lc_events n WHERE n.customer_id = e.customer_id"
                    "   AND n.kind = e.kind AND n.occurred_at = e.occurred_at)",
                    event=LifecycleEvent, scope=scope("e.customer_id")),
        # Index: the customers' primary key.
        status_changes=render("SELECT count(*) FROM lc_customers b JOIN {customer} c ON c.id = b.customer_id"
                              " WHERE {scope} AND c.status <> b.status", customer=Customer, scope=scope("c.id")),
    )


# Index: the customers' primary key (every batch_size-th id bounds a full scan's batch).
FULL_SCAN_BOUNDS = render("SELECT id FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM {customer}) x"
                          " WHERE (n - 1) %% %s = 0 ORDER BY id", customer=Customer)
EVENTS_FROM_RAW = "INSERT INTO lc_events SELECT customer_id, kind, occurred_at FROM lc_raw WHERE kind NOT LIKE 'due%%'"
DUE_FROM_RAW = ("UPDATE lc_customers SET due_at = d.due FROM (SELECT customer_id, min(occurred_at) AS due FROM lc_raw"
                " WHERE kind LIKE 'due%%' GROUP BY customer_id) d WHERE d.customer_id = lc_customers.customer_id")
LAST_EVENT = (
    "UPDATE lc_customers SET last_kind = x.kind, last_at = x.occurred_at"
    " FROM (SELECT customer_id, kind, occurred_at,"
    "              row_number() OVER (PARTITION BY customer_id ORDER BY occurred_at DESC, " + PRECEDENCE_SQL + " DESC) AS rn"
    "       FROM lc_events) x"
    " WHERE x.rn = 1 AND x.customer_id = lc_customers.customer_id"
)
# At risk ends with the next order (the rule restarts from it, docs/metrics.md s.1), which is no event of its own:
# a customer whose latest event is at_risk and who ordered after it is active. Index: order_customer_time.
STATUS_FROM_LAST_EVENT = render(
    "UPDATE lc_customers SET status = CASE WHEN last_kind = 'at_risk' AND EXISTS (SELECT 1 FROM {order} o"
    "   WHERE o.customer_id = lc_customers.customer_id AND o.ordered_at > lc_customers.last_at) THEN 'active'"
    " ELSE " + STATUS_SQL + " END", order=Order)
EVENTS_INSERT_PYTHON = "INSERT INTO lc_events (customer_id, kind, occurred_at) VALUES (%s, %s, %s)"
DUE_UPDATE_PYTHON = "UPDATE lc_customers SET due_at = %s WHERE customer_id = %s"
GONE_EARLIEST = render("SELECT min(occurred_at) FROM {event} WHERE id IN (SELECT id FROM lc_gone)", event=LifecycleEvent)
NEW_EARLIEST = render("SELECT min(n.occurred_at) FROM lc_events n WHERE NOT EXISTS ("
                     " SELECT 1 FROM {event} e WHERE e.customer_id = n.customer_id AND e.kind = n.kind"
                     " AND e.occurred_at = n.occurred_at)", event=LifecycleEvent)
GONE_DELETE = render("DELETE FROM {event} WHERE id IN (SELECT id FROM lc_gone)", event=LifecycleEvent)
# Index: lifecycle_event_unique makes a repeat a no-op.
EVENTS_STORE = render("INSERT INTO {event} (customer_id, kind, occurred_at, created_at)"
                      " SELECT customer_id, kind, occurred_at, %(now)s FROM lc_events WHERE true ON CONFLICT DO NOTHING",
                      event=LifecycleEvent)
# An order that used a coupon of the customer redeems it (the earliest such order). Index: the coupon's
# customer key, order_customer_time.
COUPONS_REDEEM = render(
    "UPDATE {coupon} SET redeemed_order_id = o.id, redeemed_at = o.ordered_at"
    " FROM {order} o"
    " WHERE {coupon}.redeemed_order_id IS NULL"
    "   AND {coupon}.customer_id IN (SELECT customer_id FROM lc_customers)"
    "   AND o.id = (SELECT min(o2.id) FROM {order} o2"
    "               WHERE o2.customer_id = {coupon}.customer_id AND o2.coupon_code = {coupon}.code)",
    coupon=Coupon, order=Order)
TEMP_TABLES_POSTGRESQL = (
    "CREATE TEMP TABLE lc_customers (customer_id bigint PRIMARY KEY, version integer NOT NULL,"
    "  due_at timestamptz, status varchar(12), last_kind varchar(12), last_at timestamptz);"
    " CREATE TEMP TABLE lc_raw (customer_id bigint NOT NULL, kind varchar(16) NOT NULL, occurred_at timestamptz NOT NULL);"
    " CREATE TEMP TABLE lc_events (customer_id bigint NOT NULL, kind varchar(12) NOT NULL, occurred_at timestamptz NOT NULL)"
)
TEMP_TABLES_SQLITE = (
    "CREATE TEMP TABLE lc_customers (customer_id integer PRIMARY KEY, version integer NOT NULL,"
    " due_at datetime, status text, last_kind text, last_at datetime)",
    "CREATE TEMP TABLE lc_events (customer_id integer NOT NULL, kind text NOT NULL, occurred_at datetime NOT NULL)",
)
DROP_TEMP_TABLES = {True: ("DROP TABLE lc_customers", "DROP TABLE lc_events", "DROP TABLE lc_raw"),
                    False: ("DROP TABLE lc_customers", "DROP TABLE lc_events")}
