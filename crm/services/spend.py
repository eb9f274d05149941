"""Acquisition spend in: one amount per month and channel (blank: all channels), the numerator of CAC
(docs/metrics.md section 6). The admin, the API and the CSV import all write through ``spend_upsert`` /
``spend_update`` / ``spend_delete``, so each says the same thing about a bad value and leaves an audit row.
"""

import datetime as dt
from decimal import Decimal, InvalidOperation
from collections.abc import Callable
from typing import Any, Literal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext

from core.bounds import EARLIEST_BUSINESS_DATETIME, latest_business_datetime, text_error
from core.selectors import business_settings
from crm.models import SPEND_AMOUNT_MAX, AcquisitionSpend, AuditEntry
from crm.services.audit import Actor, apply_changes, audit_record, fields_snapshot

SPEND_FIELDS = ["month", "channel", "amount", "currency"]
CHANNEL_MAX = 40
Outcome = Literal["created", "updated", "unchanged"]
MONTH_FORMAT = "YYYY-MM"  # the form a month is written in, in every language (as the API's and the file's)
# How a message's data are put into its sentence: plain text for the API and the import's report; the admin
# passes core.isolation.sentence_isolated, so a code or a month keeps its order in a right-to-left page.
Render = Callable[..., Any]


def _plain(template: str, **data: Any) -> str:
    return template % data


def spend_latest_month() -> dt.date:
    """The last month one may enter: that of the latest business instant (a year ahead), as for orders."""
    return latest_business_datetime().date().replace(day=1)


def spend_earliest_month() -> dt.date:
    return EARLIEST_BUSINESS_DATETIME.date().replace(day=1)


def spend_month_parse(value: Any, *, render: Render = _plain) -> dt.date:
    """A month given as a date (the first of a month), "YYYY-MM" or "YYYY-MM-01"; ValidationError otherwise."""
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, str):
        text = value.strip()
        try:
            value = dt.date.fromisoformat(f"{text}-01" if len(text) == 7 else text)
        except ValueError:
            # Translators: format is YYYY-MM (kept as it is), example 2026-03, first_day 2026-03-01.
            raise ValidationError(render(gettext(
                "'%(value)s' is not a month: write it as %(format)s (e.g. %(example)s) or as its first day "
                "(%(first_day)s)."), value=text, format=MONTH_FORMAT, example="2026-03", first_day="2026-03-01"),
                code="invalid_month") from None
    if not isinstance(value, dt.date):
        # Translators: format is YYYY-MM (kept as it is), example 2026-03.
        raise ValidationError(render(gettext("A month is required (%(format)s, e.g. %(example)s)."),
                                     format=MONTH_FORMAT, example="2026-03"), code="required")
    if value.day != 1:
        # A spend is a month's: a mid-month date would leave unclear which month it belongs to.
        raise ValidationError(render(gettext("A month is written as its first day (%(first)s), not %(value)s."),
                                     first=f"{value:%Y-%m}-01", value=value.isoformat()), code="not_first_of_month")
    earliest, latest = spend_earliest_month(), spend_latest_month()
    if not earliest <= value <= latest:
        raise ValidationError(render(gettext(
            "The month must be between %(earliest)s and %(latest)s (at most a year ahead); got %(value)s."),
            earliest=f"{earliest:%Y-%m}", latest=f"{latest:%Y-%m}", value=f"{value:%Y-%m}"),
            code="month_out_of_range")
    return value


def spend_amount_parse(value: Any, *, render: Render = _plain) -> Decimal:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValidationError(gettext("This field is required."), code="required")
    text = value.strip() if isinstance(value, str) else str(value)
    try:
        amount = value if isinstance(value, Decimal) else Decimal(text)
    except InvalidOperation:
        raise ValidationError(render(gettext("'%(value)s' is not a number."), value=text), code="invalid") from None
    if not amount.is_finite():
        raise ValidationError(render(gettext("'%(value)s' is not a finite number."), value=text), code="invalid")
    if amount < 0:
        raise ValidationError(render(gettext("An amount cannot be negative; got %(value)s."), value=text),
                              code="negative")
    if amount.as_tuple().exponent < -2:
        raise ValidationError(render(gettext("At most 2 decimal places; got %(value)s."), value=text),
                              code="max_decimal_places")
    if amount > SPEND_AMOUNT_MAX:
        raise ValidationError(render(gettext("At most %(most)s; got %(value)s."), most=SPEND_AMOUNT_MAX, value=text),
                              code="max_value")
    return amount.quantize(Decimal("0.01"))


def spend_currency_parse(value: Any, *, render: Render = _plain) -> str:
    """The business currency, the only one accepted (blank means it): the KPIs add spend to revenue-based
    figures, and adding amounts of two currencies would be wrong without a rate nobody has given."""
    business = business_settings().currency.upper()
    text = (value or "").strip().upper() if isinstance(value, str) else ("" if value is None else str(value).upper())
    if not text:
        return business
    if text != business:
        # Translators: acquisition spend (what was paid to win new customers); business and value are ISO
        # currency codes such as EUR.
        raise ValidationError(render(gettext(
            "Spend must be in the business currency, %(business)s (the KPIs add amounts): %(value)s is refused. "
            "Convert the amount to %(business)s and enter it again."), business=business, value=text),
            code="currency_mismatch")
    return text


def spend_channel_parse(value: Any, *, render: Render = _plain) -> str:
    text = (value or "").strip() if isinstance(value, str) else ("" if value is None else str(value).strip())
    if problem := text_error(text):
        raise ValidationError(problem, code="invalid")
    if len(text) > CHANNEL_MAX:
        raise ValidationError(render(gettext("At most %(most)s characters; got %(count)s."),
                                     most=CHANNEL_MAX, count=len(text)), code="max_length")
    return text


def spend_clean(*, month: Any, channel: Any, amount: Any, currency: Any, render: Render = _plain) -> dict[str, Any]:
    """Every field checked (all errors at once, by field); the values as stored."""
    data: dict[str, Any] = {}
    errors: dict[str, list[ValidationError]] = {}
    for name, parse, value in (("month", spend_month_parse, month), ("channel", spend_channel_parse, channel),
                               ("amount", spend_amount_parse, amount), ("currency", spend_currency_parse, currency)):
        try:
            data[name] = parse(value, render=render)
        except ValidationError as exc:
            errors[name] = exc.error_list
    if errors:
        raise ValidationError(errors)
    return data


def spend_upsert(*, month: Any, channel: Any, amount: Any, currency: Any, actor: Actor) -> tuple[AcquisitionSpend, Outcome]:
    """Set the spend of (month, channel): created, updated (another amount) or unchanged (the same again),
    so re-importing a file or re-posting a body changes nothing."""
    data = spend_clean(month=month, channel=channel, amount=amount, currency=currency)
    for _attempt in range(2):
        try:
            with transaction.atomic():
                spend = AcquisitionSpend.objects.select_for_update().filter(
                    month=data["month"], channel=data["channel"]).first()
                if spend is None:
                    spend = AcquisitionSpend.objects.create(**data)
                    audit_record(actor=actor, action=AuditEntry.Action.CREATE, instance=spend,
                                 changes=fields_snapshot(spend, SPEND_FIELDS), customer=None)
                    return spend, "created"
                return spend, _save_changes(spend=spend, data=data, actor=actor)
        except IntegrityError:
            # Another writer created the same (month, channel) between the read and the insert: once more
            # finds its row and updates it.
            continue
    raise ValidationError(gettext("The spend of this month and channel is being written by someone else; try again."))


def spend_update(*, spend: AcquisitionSpend, actor: Actor, data: dict[str, Any]) -> AcquisitionSpend:
    """Change a stored spend (any of month, channel, amount, currency; the others kept)."""
    merged = {name: data.get(name, getattr(spend, name)) for name in SPEND_FIELDS}
    clean = spend_clean(**merged)
    key = (clean["month"], clean["channel"])
    if key != (spend.month, spend.channel) and AcquisitionSpend.objects.filter(
            month=key[0], channel=key[1]).exclude(pk=spend.pk).exists():
        raise ValidationError({"channel": gettext(
            "A spend of %(month)s for this channel already exists: change that one instead.") % {
            "month": f"{key[0]:%Y-%m}"}}, code="duplicate")
    try:
        with transaction.atomic():
            spend = AcquisitionSpend.objects.select_for_update().get(pk=spend.pk)
            _save_changes(spend=spend, data=clean, actor=actor)
    except IntegrityError:
        raise ValidationError({"channel": gettext(
            "A spend of %(month)s for this channel already exists: change that one instead.") % {
            "month": f"{key[0]:%Y-%m}"}}, code="duplicate") from None
    return spend


def _save_changes(*, spend: AcquisitionSpend, data: dict[str, Any], actor: Actor) -> Outcome:
    changes = apply_changes(spend, data)
    if not changes:
        return "unchanged"
    spend.save()
    audit_record(actor=actor, action=AuditEntry.Action.UPDATE, instance=spend, changes=changes, customer=None)
    return "updated"


def spend_delete(*, spend: AcquisitionSpend, actor: Actor) -> None:
    """Remove a spend entered by mistake: its month then has no spend (CAC n/a), which an amount of 0 would
    not say. The audit row keeps what it was."""
    with transaction.atomic():
        snapshot = fields_snapshot(spend, SPEND_FIELDS)
        audit_record(actor=actor, action=AuditEntry.Action.DELETE, instance=spend, changes=snapshot, customer=None)
        spend.delete()
