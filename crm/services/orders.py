"""Orders in: one at a time (API), a list all-or-nothing (API bulk), or batches from a CSV import.

All go through ``orders_insert``: it resolves customers, tells a repeat of a known order (returned, not
created) from a conflicting one (an error), writes the new orders with their audit rows, and moves the
customers' denormalised figures in one UPDATE. On PostgreSQL the rows go in with COPY.
"""

import datetime as dt
import io
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce, Greatest, Least
from django.utils import timezone
from django.utils.translation import gettext

from core.bounds import business_datetime_error, text_error
from core.dialect import is_postgresql
from crm.models import Customer, Order
from crm.sql import (
    AUDIT_NEW_ORDERS, COPY_ORDERS, CUSTOMER_IDS_BY_EXTERNAL_ID, LOCK_CUSTOMERS, MOVE_CUSTOMER_FIGURES,
    ORDERS_BY_EXTERNAL_ID,
)
from crm.services.audit import Actor, audit_bulk_create
from crm.services.errors import ConflictError, ItemErrors
from crm.signals import history_changed
from crm.validators import CURRENCY_RE

ORDER_FIELDS = ["external_id", "customer", "ordered_at", "amount", "currency", "coupon_code"]
MAX_AMOUNT = Decimal("9999999999.99")


@dataclass(frozen=True, slots=True)
class OrderInput:
    external_id: str
    customer: str  # the customer's external_id
    ordered_at: dt.datetime
    amount: Decimal
    currency: str
    coupon_code: str = ""

    def same_as(self, other: "OrderInput") -> bool:
        return (self.customer, self.ordered_at, self.amount, self.currency, self.coupon_code) == (
            other.customer,
            other.ordered_at,
            other.amount,
            other.currency,
            other.coupon_code,
        )


@dataclass
class OrderBatchResult:
    created: list[int] = field(default_factory=list)  # indexes into the items given
    existing: list[int] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)


def parse_datetime_value(raw: str) -> dt.datetime:
    """ISO 8601 date or date-time; a value without an offset is in the business time zone."""
    value = dt.datetime.fromisoformat(raw.strip())
    if value.tzinfo is None:
        value = timezone.make_aware(value)
    return value


def _text(raw: dict[str, Any], key: str) -> str:
    value = raw.get(key)
    return value.strip() if isinstance(value, str) else ("" if value is None else str(value).strip())


def order_input_parse(raw: dict[str, Any]) -> tuple[OrderInput | None, dict[str, str]]:
    """Validate one order given as strings (a CSV row) or plain values; return it or {field: message}.

    Called once per row of an import of millions, hence the plain code.
    """
    errors: dict[str, str] = {}
    for key, value in raw.items():
        if isinstance(value, str) and (problem := text_error(value)):
            errors[key] = problem
    external_id = _text(raw, "external_id")
    if not external_id:
        errors["external_id"] = gettext("This field is required.")
    elif len(external_id) > 64:
        errors["external_id"] = gettext("At most 64 characters.")
    customer = _text(raw, "customer")
    if not customer:
        errors["customer"] = gettext("This field is required (the customer's external_id).")
    ordered_at = raw.get("ordered_at")
    if isinstance(ordered_at, dt.datetime):
        if ordered_at.tzinfo is None:
            ordered_at = timezone.make_aware(ordered_at)
    elif not ordered_at:
        errors["ordered_at"] = gettext("This field is required.")
    else:
        try:
            ordered_at = parse_datetime_value(str(ordered_at))
        except (ValueError, OverflowError):
            errors["ordered_at"] = gettext(
                "'%(value)s' is not an ISO 8601 date-time (e.g. 2024-05-31T14:03:00+02:00).") % {"value": ordered_at}
    if "ordered_at" not in errors and (problem := business_datetime_error(ordered_at)):
        errors["ordered_at"] = problem
    amount_text = _text(raw, "amount")
    amount = None
    if not amount_text:
        errors["amount"] = gettext("This field is required.")
    else:
        try:
            amount = Decimal(amount_text)
        except InvalidOperation:
            errors["amount"] = gettext("'%(value)s' is not a number.") % {"value": amount_text}
        else:
            if not amount.is_finite():
                errors["amount"] = gettext("'%(value)s' is not a finite number.") % {"value": amount_text}
            elif amount < 0:
                errors["amount"] = gettext("An amount cannot be negative; got %(value)s.") % {"value": amount_text}
            elif amount.as_tuple().exponent < -2:
                errors["amount"] = gettext("At most 2 decimal places; got %(value)s.") % {"value": amount_text}
            elif amount > MAX_AMOUNT:
                errors["amount"] = gettext("At most %(most)s; got %(value)s.") % {"most": MAX_AMOUNT, "value": amount_text}
    currency = _text(raw, "currency").upper() or settings.DEFAULT_CURRENCY
    if len(currency) != 3 or not CURRENCY_RE.match(currency):
        errors["currency"] = gettext("'%(value)s' is not a three-letter ISO 4217 currency code.") % {
            "value": raw.get("currency")}
    coupon_code = _text(raw, "coupon_code")
    if len(coupon_code) > 64:
        errors["coupon_code"] = gettext("At most 64 characters.")
    if errors:
        return None, errors
    return OrderInput(external_id, customer, ordered_at, amount, currency, coupon_code), {}


def _customer_ids(keys: set[str]) -> dict[str, int]:
    if is_postgresql():
        # One array parameter, not one placeholder per key: batches hold tens of thousands of keys.
        with connection.cursor() as cursor:
            cursor.execute(CUSTOMER_IDS_BY_EXTERNAL_ID, [list(keys)])
            return dict(cursor.fetchall())
    return dict(Customer.objects.filter(external_id__in=keys).values_list("external_id", "id"))


def _existing_orders(external_ids: list[str]) -> dict[str, OrderInput]:
    if is_postgresql():
        with connection.cursor() as cursor:
            cursor.execute(ORDERS_BY_EXTERNAL_ID, [external_ids])
            rows = cursor.fetchall()
    else:
        rows = Order.objects.filter(external_id__in=external_ids).values_list(
            "external_id", "customer__external_id", "ordered_at", "amount", "currency", "coupon_code"
        )
    return {r[0]: OrderInput(*r) for r in rows}


def orders_insert(*, actor: Actor, items: list[OrderInput], all_or_nothing: bool) -> OrderBatchResult:
    """Insert the new orders among ``items``; see the module docstring.

    With ``all_or_nothing`` any error raises ItemErrors and nothing is written; otherwise the good items
    are written and the errors returned. Safe against a concurrent writer of the same orders: a unique
    violation re-runs the classification, so a race loser answers "existing" or "conflict".
    """
    for attempt in range(3):
        try:
            with transaction.atomic():
                return _orders_insert_once(actor=actor, items=items, all_or_nothing=all_or_nothing)
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _orders_insert_once(*, actor: Actor, items: list[OrderInput], all_or_nothing: bool) -> OrderBatchResult:
    result = OrderBatchResult()
    customer_ids = _customer_ids({i.customer for i in items})
    known = _existing_orders([i.external_id for i in items])
    new: list[tuple[int, OrderInput]] = []
    for index, item in enumerate(items):
        if item.customer not in customer_ids:
            result.errors.append(
                {"index": index, "field": "customer", "code": "unknown_customer",
                 "message": gettext("No customer with external_id '%(id)s'.") % {"id": item.customer}}
            )
            continue
        prior = known.get(item.external_id)
        if prior is not None:
            if prior.same_as(item):
                result.existing.append(index)
            else:
                result.errors.append(
                    {"index": index, "field": "external_id", "code": "conflict",
                     "message": gettext("Order '%(id)s' already exists with different data (%(fields)s); orders "
                                        "are immutable.") % {"id": item.external_id, "fields": _differences(prior, item)}}
                )
            continue
        known[item.external_id] = item
        new.append((index, item))
    if result.errors and all_or_nothing:
        raise ItemErrors(result.errors)
    if new:
        _write_orders(actor=actor, new=[item for _, item in new], customer_ids=customer_ids)
        result.created = [index for index, _ in new]
    return result


def _differences(a: OrderInput, b: OrderInput) -> str:
    names = [f for f in ("customer", "ordered_at", "amount", "currency", "coupon_code") if getattr(a, f) != getattr(b, f)]
    return ", ".join(f"{n}: {getattr(a, n)} != {getattr(b, n)}" for n in names)


def _write_orders(*, actor: Actor, new: list[OrderInput], customer_ids: dict[str, int]) -> None:
    deltas: dict[int, list[Any]] = defaultdict(lambda: [0, Decimal("0"), None, None])
    for item in new:
        d = deltas[customer_ids[item.customer]]
        d[0] += 1
        d[1] += item.amount
        d[2] = item.ordered_at if d[2] is None else min(d[2], item.ordered_at)
        d[3] = item.ordered_at if d[3] is None else max(d[3], item.ordered_at)
    if is_postgresql():
        _write_orders_postgresql(actor=actor, new=new, customer_ids=customer_ids, deltas=deltas)
    else:
        _write_orders_generic(actor=actor, new=new, customer_ids=customer_ids, deltas=deltas)
    history_changed.send(sender=Order, customer_ids=sorted(deltas))


def _write_orders_postgresql(
    *, actor: Actor, new: list[OrderInput], customer_ids: dict[str, int], deltas: dict[int, list[Any]]
) -> None:
    ids = sorted(deltas)
    now = timezone.now()
    with connection.cursor() as cursor:
        # Lock the customers in id order first, so two importers touching the same customers queue up
        # instead of deadlocking in the UPDATE below.
        cursor.execute(LOCK_CUSTOMERS, [ids])
        buf = io.StringIO()
        for item in new:
            buf.write(
                f"{_copy_text(item.external_id)}\t{customer_ids[item.customer]}\t{item.ordered_at.isoformat()}\t"
                f"{item.amount}\t{item.currency}\t{_copy_text(item.coupon_code)}\t{now.isoformat()}\n"
            )
        # The raw psycopg cursor's errors are not Django's: wrapped, a concurrent writer's unique violation is
        # an IntegrityError, which orders_insert answers by classifying again ("existing", not a 500).
        with connection.wrap_database_errors, cursor.cursor.copy(COPY_ORDERS) as copy:
            copy.write(buf.getvalue())
        cursor.execute(AUDIT_NEW_ORDERS, [now, actor.user.pk if actor.user else None, actor.label,
                                          [i.external_id for i in new]])
        cursor.execute(MOVE_CUSTOMER_FIGURES, [
            now, ids, [deltas[i][0] for i in ids], [deltas[i][1] for i in ids],
            [deltas[i][2] for i in ids], [deltas[i][3] for i in ids]])


def _copy_text(value: str) -> str:
    # COPY's text format: backslash, tab and newlines must be escaped.
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _write_orders_generic(
    *, actor: Actor, new: list[OrderInput], customer_ids: dict[str, int], deltas: dict[int, list[Any]]
) -> None:
    orders = Order.objects.bulk_create(
        [
            Order(
                external_id=i.external_id,
                customer_id=customer_ids[i.customer],
                ordered_at=i.ordered_at,
                amount=i.amount,
                currency=i.currency,
                coupon_code=i.coupon_code,
            )
            for i in new
        ],
        batch_size=1000,
    )
    audit_bulk_create(actor=actor, instances=orders, fields=["external_id", "customer_id", *ORDER_FIELDS[2:]])
    for customer_id in sorted(deltas):
        n, s, mn, mx = deltas[customer_id]
        Customer.objects.filter(pk=customer_id).update(
            order_count=F("order_count") + n,
            total_spent=F("total_spent") + s,
            last_order_at=Greatest(Coalesce(F("last_order_at"), Value(mx)), Value(mx)),
            acquired_at=Least(Coalesce(F("acquired_at"), Value(mn)), Value(mn)),
            history_version=F("history_version") + 1,
            updated_at=timezone.now(),
        )
        Customer.objects.filter(pk=customer_id, status=Customer.Status.PROSPECT).update(status=Customer.Status.ACTIVE)


def order_create(*, actor: Actor, item: OrderInput) -> tuple[Order, bool]:
    """One order, idempotent by external_id: (order, created). Raises ConflictError or ItemErrors."""
    try:
        result = orders_insert(actor=actor, items=[item], all_or_nothing=True)
    except ItemErrors as exc:
        if exc.only_conflicts:
            raise ConflictError(exc.item_errors[0]["message"]) from exc
        raise
    return Order.objects.select_related("customer").get(external_id=item.external_id), bool(result.created)


def orders_create_bulk(*, actor: Actor, items: list[OrderInput]) -> tuple[list[Order], OrderBatchResult]:
    """A list of orders, all-or-nothing (ItemErrors names each bad item); repeats are returned, not created."""
    result = orders_insert(actor=actor, items=items, all_or_nothing=True)
    by_id = {o.external_id: o for o in Order.objects.filter(external_id__in=[i.external_id for i in items]).select_related("customer")}
    return [by_id[i.external_id] for i in items], result
