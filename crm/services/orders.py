"""Orders in: one at a time (API), a list all-or-nothing (API bulk), or batches from a CSV import.

All go through ``orders_insert``: it resolves customers, tells a repeat of a known order (returned, not
created) from a conflicting one (an error), writes the new orders with their audit rows, and moves the
customers' denormalised figures in one UPDATE. On PostgreSQL the rows go in with COPY.

An order may carry lines (docs/metrics.md section 6): written with it, in the same transaction, numbered
1..n in the order given. Lines must sum exactly to the order's amount, or the order is refused. Orders are
immutable, lines included: a repeat with the same lines (or with none given) is "existing", a repeat with
other lines is a conflict, as any other changed field is. Lines for an order stored without them come
through the ``order_lines`` import (crm/services/imports.py), which uses ``order_lines_insert`` below.
"""

import datetime as dt
import io
from collections import defaultdict
from dataclasses import dataclass, field, replace
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
from crm.inputs import MAX_LINES_PER_ORDER
from crm.models import AMOUNT_MAX, LINE_QUANTITY_MAX, Customer, Order, OrderLine
from crm.sql import (
    AUDIT_NEW_ORDERS, COPY_ORDER_LINES, COPY_ORDERS, CUSTOMER_IDS_BY_EXTERNAL_ID, LOCK_CUSTOMERS, LOCK_ORDERS,
    MOVE_CUSTOMER_FIGURES, ORDER_IDS_BY_EXTERNAL_ID, ORDERS_BY_EXTERNAL_ID,
)
from crm.services.audit import Actor, audit_bulk_create
from crm.services.errors import ConflictError, ItemErrors
from crm.signals import history_changed
from crm.validators import CURRENCY_RE

ORDER_FIELDS = ["external_id", "customer", "ordered_at", "amount", "currency", "coupon_code"]
MAX_AMOUNT = AMOUNT_MAX


@dataclass(frozen=True, slots=True)
class OrderLineInput:
    product_id: str
    product_name: str = ""
    category: str = ""  # blank: unknown
    quantity: int = 1
    amount: Decimal = Decimal("0")  # the line's total


@dataclass(frozen=True, slots=True)
class OrderInput:
    external_id: str
    customer: str  # the customer's external_id
    ordered_at: dt.datetime
    amount: Decimal
    currency: str
    coupon_code: str = ""
    lines: tuple[OrderLineInput, ...] = ()  # empty: none given

    def same_as(self, other: "OrderInput") -> bool:
        # A repeat that gives no lines says nothing about them: a client that never sends lines can still
        # repeat an order that got its lines from elsewhere.
        return (self.customer, self.ordered_at, self.amount, self.currency, self.coupon_code) == (
            other.customer,
            other.ordered_at,
            other.amount,
            other.currency,
            other.coupon_code,
        ) and (not other.lines or self.lines == other.lines)


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
    lines: list[OrderLineInput] = []
    raw_lines = raw.get("lines") or []
    if not isinstance(raw_lines, (list, tuple)):
        errors["lines"] = gettext("Expected a list of lines.")
    elif len(raw_lines) > MAX_LINES_PER_ORDER:
        errors["lines"] = gettext("At most %(most)s lines per order; got %(count)s.") % {
            "most": MAX_LINES_PER_ORDER, "count": len(raw_lines)}
    else:
        for position, raw_line in enumerate(raw_lines, start=1):
            line, line_errors = order_line_parse(raw_line if isinstance(raw_line, dict) else {})
            if line is not None:
                lines.append(line)
            # The API's error shape: "lines.2.amount" is the second line's amount.
            errors.update({f"lines.{position}.{key}": message for key, message in line_errors.items()})
    if errors:
        return None, errors
    return OrderInput(external_id, customer, ordered_at, amount, currency, coupon_code, tuple(lines)), {}


def _amount_error(text: str, *, most: Decimal) -> str:
    try:
        amount = Decimal(text)
    except InvalidOperation:
        return gettext("'%(value)s' is not a number.") % {"value": text}
    if not amount.is_finite():
        return gettext("'%(value)s' is not a finite number.") % {"value": text}
    if amount < 0:
        return gettext("An amount cannot be negative; got %(value)s.") % {"value": text}
    if amount.as_tuple().exponent < -2:
        return gettext("At most 2 decimal places; got %(value)s.") % {"value": text}
    if amount > most:
        return gettext("At most %(most)s; got %(value)s.") % {"most": most, "value": text}
    return ""


def order_line_parse(raw: dict[str, Any]) -> tuple[OrderLineInput | None, dict[str, str]]:
    """Validate one order line (the API's list item or an import's row); return it or {field: message}."""
    errors: dict[str, str] = {}
    for key, value in raw.items():
        if isinstance(value, str) and (problem := text_error(value)):
            errors[key] = problem
    product_id = _text(raw, "product_id")
    if not product_id:
        errors["product_id"] = gettext("This field is required.")
    for key, most in (("product_id", 64), ("product_name", 200), ("category", 100)):
        if len(_text(raw, key)) > most:
            errors[key] = gettext("At most %(most)s characters.") % {"most": most}
    quantity_text = _text(raw, "quantity") or "1"
    quantity = 0
    try:
        quantity = int(quantity_text)
    except ValueError:
        errors["quantity"] = gettext("'%(value)s' is not a whole number.") % {"value": quantity_text}
    else:
        if not 1 <= quantity <= LINE_QUANTITY_MAX:
            errors["quantity"] = gettext("Between 1 and %(most)s; got %(value)s.") % {
                "most": LINE_QUANTITY_MAX, "value": quantity_text}
    amount_text = _text(raw, "amount")
    if not amount_text:
        errors["amount"] = gettext("This field is required.")
    elif problem := _amount_error(amount_text, most=AMOUNT_MAX):
        errors["amount"] = problem
    if errors:
        return None, errors
    return OrderLineInput(product_id, _text(raw, "product_name"), _text(raw, "category"), quantity,
                          Decimal(amount_text)), {}


def lines_sum_error(*, amount: Decimal, lines: tuple[OrderLineInput, ...] | list[OrderLineInput]) -> str:
    """The message when ``lines`` do not sum to the order's ``amount`` exactly, else ""."""
    total = sum((line.amount for line in lines), Decimal("0"))
    if total == amount:
        return ""
    # Translators: an order refused by the API or an import; both are plain amounts, e.g. 30.00 and 32.50.
    return gettext("The lines sum to %(lines)s but the order's amount is %(amount)s: they must be equal.") % {
        "lines": total, "amount": amount}


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
    repeated_with_lines = [i.external_id for i in items if i.lines and i.external_id in known]
    for external_id, lines in _stored_lines(repeated_with_lines).items():
        known[external_id] = replace(known[external_id], lines=lines)
    new: list[tuple[int, OrderInput]] = []
    for index, item in enumerate(items):
        if item.lines and (problem := lines_sum_error(amount=item.amount, lines=item.lines)):
            result.errors.append({"index": index, "field": "lines", "code": "lines_sum", "message": problem})
            continue
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
        _write_lines([(item.external_id, item.lines) for _, item in new])
        result.created = [index for index, _ in new]
    return result


def _differences(a: OrderInput, b: OrderInput) -> str:
    names = [f for f in ("customer", "ordered_at", "amount", "currency", "coupon_code") if getattr(a, f) != getattr(b, f)]
    parts = [f"{n}: {getattr(a, n)} != {getattr(b, n)}" for n in names]
    if b.lines and a.lines != b.lines:
        parts.append(f"lines: {_lines_text(a.lines)} != {_lines_text(b.lines)}")
    return ", ".join(parts)


def _lines_text(lines: tuple[OrderLineInput, ...]) -> str:
    # Part of a message naming field values as the API spells them, so not translated (as the values are not).
    return "[" + "; ".join(f"{line.quantity} x {line.product_id} = {line.amount}" for line in lines) + "]"


def _stored_lines(external_ids: list[str]) -> dict[str, tuple[OrderLineInput, ...]]:
    """The stored lines of those orders (an order without lines is absent)."""
    if not external_ids:
        return {}
    stored: dict[str, list[OrderLineInput]] = defaultdict(list)
    rows = OrderLine.objects.filter(order__external_id__in=external_ids).order_by("order_id", "position").values_list(
        "order__external_id", "product_id", "product_name", "category", "quantity", "amount")
    for external_id, *fields in rows:
        stored[external_id].append(OrderLineInput(*fields))
    return {k: tuple(v) for k, v in stored.items()}


def _write_lines(new: list[tuple[str, tuple[OrderLineInput, ...]]]) -> int:
    """Write the lines of orders already written (external_id, lines), numbered 1..n; returns the count."""
    new = [(external_id, lines) for external_id, lines in new if lines]
    if not new:
        return 0
    ids = _order_ids([external_id for external_id, _ in new])
    rows = [OrderLine(order_id=ids[external_id], position=position, product_id=line.product_id,
                      product_name=line.product_name, category=line.category, quantity=line.quantity,
                      amount=line.amount)
            for external_id, lines in new for position, line in enumerate(lines, start=1)]
    if is_postgresql():
        buf = io.StringIO()
        for r in rows:
            buf.write(f"{r.order_id}\t{r.position}\t{_copy_text(r.product_id)}\t{_copy_text(r.product_name)}\t"
                      f"{_copy_text(r.category)}\t{r.quantity}\t{r.amount}\n")
        with connection.cursor() as cursor, connection.wrap_database_errors, \
                cursor.cursor.copy(COPY_ORDER_LINES) as copy:
            copy.write(buf.getvalue())
    else:
        OrderLine.objects.bulk_create(rows, batch_size=1000)
    return len(rows)


def _order_ids(external_ids: list[str]) -> dict[str, int]:
    if is_postgresql():
        with connection.cursor() as cursor:
            cursor.execute(ORDER_IDS_BY_EXTERNAL_ID, [external_ids])
            return dict(cursor.fetchall())
    return dict(Order.objects.filter(external_id__in=external_ids).values_list("external_id", "id"))


@dataclass
class LinesBatchResult:
    created: list[int] = field(default_factory=list)  # indexes into the groups given
    existing: list[int] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)  # {"index", "field", "code", "message"}


def order_lines_insert(*, groups: list[tuple[str, tuple[OrderLineInput, ...]]]) -> LinesBatchResult:
    """Lines for orders already stored, a group (order external_id, its lines) each, in one transaction.

    A group is written only to an order that has no lines yet and only if it sums to the order's amount; the
    same lines again are "existing"; lines never replace other lines (orders are immutable facts).
    """
    result = LinesBatchResult()
    with transaction.atomic():
        external_ids = [external_id for external_id, _ in groups]
        known = _existing_orders(external_ids)
        if is_postgresql() and known:
            # Before reading their lines: two importers of the same file wait for each other here instead of
            # both finding no lines and both writing position 1.
            with connection.cursor() as cursor:
                cursor.execute(LOCK_ORDERS, [sorted(known)])
        stored = _stored_lines([e for e in external_ids if e in known])
        new: list[tuple[str, tuple[OrderLineInput, ...]]] = []
        for index, (external_id, lines) in enumerate(groups):
            order = known.get(external_id)
            if order is None:
                result.errors.append({"index": index, "field": "order", "code": "unknown_order",
                                      "message": gettext("No order with external_id '%(id)s'.") % {"id": external_id}})
            elif external_id in stored:
                if stored[external_id] == lines:
                    result.existing.append(index)
                else:
                    result.errors.append({"index": index, "field": "order", "code": "conflict", "message": gettext(
                        "Order '%(id)s' already has other lines; lines are never replaced.") % {"id": external_id}})
            elif len(lines) > MAX_LINES_PER_ORDER:
                result.errors.append({"index": index, "field": "order", "code": "too_many", "message": gettext(
                    "At most %(most)s lines per order; got %(count)s.") % {
                        "most": MAX_LINES_PER_ORDER, "count": len(lines)}})
            elif problem := lines_sum_error(amount=order.amount, lines=lines):
                result.errors.append({"index": index, "field": "amount", "code": "lines_sum", "message": problem})
            else:
                stored[external_id] = lines  # a second group for the same order in this batch is a repeat
                new.append((external_id, lines))
                result.created.append(index)
        _write_lines(new)
    return result


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
