"""API fields and filters that apply the bounds of ``core.bounds`` (one message for every entry point)."""

import datetime as dt
from typing import Any

import django_filters
from django import forms
from django.utils.dateparse import parse_datetime
from rest_framework import serializers

from core.bounds import business_datetime_error


class BusinessDateTimeField(serializers.DateTimeField):
    """A business instant: ISO 8601, 1970 to one year from now, any offset within +-15:59."""

    def to_internal_value(self, value: Any) -> dt.datetime:
        # DRF converts to the current zone before we see the value; check the offset as it was written.
        as_written = _parse_or_none(value)
        if as_written is not None and as_written.utcoffset() is not None:
            if error := business_datetime_error(as_written):
                raise serializers.ValidationError(error, code="datetime_out_of_range")
        parsed = super().to_internal_value(value)
        error = business_datetime_error(parsed)
        if error:
            raise serializers.ValidationError(error, code="datetime_out_of_range")
        return parsed


def _parse_or_none(value: Any) -> dt.datetime | None:
    try:
        return parse_datetime(value) if isinstance(value, str) else None
    except ValueError:  # well-formed but impossible (month 13): DRF's own parse reports it
        return None


class _BoundedIsoDateTimeField(forms.DateTimeField):
    input_formats = [django_filters.fields.IsoDateTimeField.ISO_8601]

    def strptime(self, value: str, format: str) -> dt.datetime:
        return django_filters.fields.IsoDateTimeField().strptime(value, format)

    def to_python(self, value: Any) -> dt.datetime | None:
        parsed = super().to_python(value)
        if parsed is None:
            return None
        error = business_datetime_error(parsed)
        if error:
            raise forms.ValidationError(error, code="datetime_out_of_range")
        # PostgreSQL refuses offsets beyond +-15:59 and years past 9999: send UTC.
        return parsed.astimezone(dt.UTC)


class BusinessDateTimeFilter(django_filters.IsoDateTimeFilter):
    """A date-time filter bounded like the values it compares with (a bad value is a 400, not a 500)."""

    field_class = _BoundedIsoDateTimeField
