"""Who may be called now: calling hours in the customer's own time zone(s), DST included."""

import datetime as dt
import zoneinfo
from functools import lru_cache

from django.conf import settings


@lru_cache(maxsize=4096)
def zone_info(name: str) -> zoneinfo.ZoneInfo | None:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def zone_keys(call_zones: str) -> list[str]:
    """The zones a customer may be in; with none recorded, the business time zone."""
    return [z for z in call_zones.split(",") if z] or [settings.TIME_ZONE]


def inside_calling_hours(*, call_zones: str, now: dt.datetime, start: dt.time, end: dt.time) -> bool:
    """True when it is calling hours in every zone the customer may be in (unknown zones never qualify)."""
    for name in zone_keys(call_zones):
        zone = zone_info(name)
        if zone is None or not (start <= now.astimezone(zone).time() < end):
            return False
    return True


@lru_cache(maxsize=64)
def _open_zones_at_minute(minute: dt.datetime, start: dt.time, end: dt.time) -> tuple[str, ...]:
    # Offsets are whole minutes and hours are HH:MM, so a zone's state cannot change inside a UTC minute.
    return tuple(sorted(z for z in zoneinfo.available_timezones() if start <= minute.astimezone(zone_info(z)).time() < end))


def open_zones(*, now: dt.datetime, start: dt.time, end: dt.time) -> tuple[str, ...]:
    """Every IANA zone in which it is calling hours at ``now``."""
    if start.second or end.second:
        raise ValueError("Calling hours are whole minutes.")
    minute = now.astimezone(dt.timezone.utc).replace(second=0, microsecond=0)
    return _open_zones_at_minute(minute, start, end)


def local_to_utc(*, call_zones: str, local: dt.datetime) -> dt.datetime:
    """A callback time the agent typed in the customer's local time, as an aware instant."""
    zone = zone_info(zone_keys(call_zones)[0]) or dt.timezone.utc
    return local.replace(tzinfo=zone)


@lru_cache(maxsize=64)
def _open_zones_literal(minute: dt.datetime, start: dt.time, end: dt.time) -> str:
    return "{" + ",".join(_open_zones_at_minute(minute, start, end)) + "}"


def open_zones_array_literal(*, now: dt.datetime, start: dt.time, end: dt.time) -> str:
    """open_zones as a PostgreSQL text[] literal, built once a minute: one parameter for the claim query
    instead of hundreds of array elements to encode on every claim. (Zone names hold no , { } or quotes.)"""
    open_zones(now=now, start=start, end=end)  # validates whole minutes
    return _open_zones_literal(now.astimezone(dt.timezone.utc).replace(second=0, microsecond=0), start, end)
