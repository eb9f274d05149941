"""crm's hand-written statements, named, each with the index it relies on: the bulk order path of
crm/services/orders.py (PostgreSQL; elsewhere the ORM does the same work, see core/dialect.py) and the
lifecycle results written onto the customers (customers_set_lifecycle, for winback's engine)."""

import functools

from psycopg import sql

from core.dialect import id_list_condition, is_postgresql
from core.sql import render
from crm.models import AuditEntry, Customer, Order, OrderLine

# Index: customer_external_id_unique. One array parameter, not one placeholder per key: batches hold tens
# of thousands of keys.
CUSTOMER_IDS_BY_EXTERNAL_ID = render("SELECT external_id, id FROM {customer} WHERE external_id = ANY(%s)",
                                     customer=Customer)

# Index: order_external_id_unique, then the customer's primary key.
ORDERS_BY_EXTERNAL_ID = render(
    "SELECT o.external_id, c.external_id, o.ordered_at, o.amount, o.currency, o.coupon_code"
    " FROM {order} o JOIN {customer} c ON c.id = o.customer_id WHERE o.external_id = ANY(%s)",
    order=Order, customer=Customer)

# Primary key, in id order: two importers touching the same customers queue up instead of deadlocking.
LOCK_CUSTOMERS = render("SELECT id FROM {customer} WHERE id = ANY(%s) ORDER BY id FOR NO KEY UPDATE", customer=Customer)

COPY_ORDERS = render(
    "COPY {order} (external_id, customer_id, ordered_at, amount, currency, coupon_code, created_at) FROM STDIN",
    order=Order)

# Index: order_external_id_unique (the orders just copied).
AUDIT_NEW_ORDERS = render(
    "INSERT INTO {audit} (at, actor_id, actor_label, action, entity, entity_id, customer_id, changes)"
    " SELECT %s, %s, %s, 'create', 'crm.order', o.id, o.customer_id,"
    "        jsonb_build_object('external_id', o.external_id, 'customer_id', o.customer_id,"
    "                           'ordered_at', o.ordered_at, 'amount', o.amount::text,"
    "                           'currency', o.currency, 'coupon_code', o.coupon_code)"
    " FROM {order} o WHERE o.external_id = ANY(%s)",
    audit=AuditEntry, order=Order)

# How new orders move a customer's denormalised figures (d: n orders, s their sum, mn/mx their first and
# last instants); a prospect becomes active. The API's batches and an import's finish both use it.
CUSTOMER_FIGURES_MOVE = (
    "UPDATE {customer} AS c SET"
    "  order_count = c.order_count + d.n,"
    "  total_spent = c.total_spent + d.s,"
    "  last_order_at = GREATEST(c.last_order_at, d.mx),"
    "  acquired_at = LEAST(c.acquired_at, d.mn),"
    "  status = CASE WHEN c.status = 'prospect' THEN 'active' ELSE c.status END,"
    "  history_version = c.history_version + 1,"
    "  updated_at = %s"
)
# Primary key. The figures move by the batch's deltas.
MOVE_CUSTOMER_FIGURES = render(
    CUSTOMER_FIGURES_MOVE +
    " FROM unnest(%s::bigint[], %s::int[], %s::numeric[], %s::timestamptz[], %s::timestamptz[]) AS d(id, n, s, mn, mx)"
    " WHERE c.id = d.id",
    customer=Customer)

# Primary key, over one batch of the lifecycle engine (``source``: its table of customer_id, status, version,
# due_at). Only rows that differ are written (an untouched customer keeps its row version and its index
# entries).
_SET_LIFECYCLE = (
    "UPDATE {customer} SET status = b.status, lifecycle_version = b.version, lifecycle_due_at = b.due_at"
    " FROM {source} b"
    " WHERE {customer}.id = b.customer_id AND {scope}"
    "   AND ({customer}.status <> b.status OR {customer}.lifecycle_version <> b.version"
    "        OR {customer}.lifecycle_due_at {distinct} b.due_at)"
)


@functools.cache
def set_lifecycle_statement(*, source: str, by_ids: bool) -> str:
    column = Customer._meta.db_table + ".id"
    scope = id_list_condition(column) if by_ids else sql.SQL("{col} BETWEEN %(lo)s AND %(hi)s").format(
        col=sql.Identifier(*column.split(".")))
    distinct = "IS DISTINCT FROM" if is_postgresql() else "IS NOT"  # null-safe "differs"
    return render(_SET_LIFECYCLE, customer=Customer, source=sql.Identifier(source), scope=scope, distinct=distinct)


# --- Order lines (issue 17; crm/services/orders.py) -------------------------------------------------------

# Index: order_external_id_unique.
ORDER_IDS_BY_EXTERNAL_ID = render("SELECT external_id, id FROM {order} WHERE external_id = ANY(%s)", order=Order)

# Index: order_external_id_unique; in id order, so two importers of the same orders' lines queue up.
LOCK_ORDERS = render("SELECT id FROM {order} WHERE external_id = ANY(%s) ORDER BY id FOR NO KEY UPDATE", order=Order)

COPY_ORDER_LINES = render(
    "COPY {line} (order_id, position, product_id, product_name, category, quantity, amount) FROM STDIN",
    line=OrderLine)
