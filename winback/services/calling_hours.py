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


# Calling hours are whole minutes, so a quarter-hour step finds the next allowed time of customers in
# several zones (each zone's window opens on the quarter hour or after it; scanning three days is 288 tests).
_STEP = dt.timedelta(minutes=15)
_HORIZON_STEPS = 3 * 24 * 4


def next_calling_time(*, call_zones: str, at: dt.datetime, start: dt.time, end: dt.time) -> dt.datetime | None:
    """``at`` when it is inside calling hours in every zone of the customer, else the first allowed minute
    after it (the next start of calling hours in the customer's first zone, or a later quarter hour for a
    customer whose zones differ); None when their zones never share calling hours."""
    if inside_calling_hours(call_zones=call_zones, now=at, start=start, end=end):
        return at
    zone = zone_info(zone_keys(call_zones)[0]) or dt.timezone.utc
    local = at.astimezone(zone)
    day = local.date() if local.time() < start else local.date() + dt.timedelta(days=1)
    candidate = dt.datetime.combine(day, start, tzinfo=zone)
    for _step in range(_HORIZON_STEPS):
        if inside_calling_hours(call_zones=call_zones, now=candidate, start=start, end=end):
            return candidate
        candidate += _STEP
    return None


def _ceil_minutes(moment: dt.datetime, minutes: int) -> dt.datetime:
    floor = moment.replace(second=0, microsecond=0)
    floor -= dt.timedelta(minutes=floor.minute % minutes)
    return floor if floor >= moment else floor + dt.timedelta(minutes=minutes)


MORNING = dt.time(9, 0)


def callback_presets(*, call_zones: str, now: dt.datetime, start: dt.time,
                     end: dt.time) -> dict[str, dt.datetime | None]:
    """The callback times offered beside the callback field, as the customer's local wall-clock time (the
    field's time, read in their first zone): in an hour (on the next five minutes), tomorrow morning (9:00,
    or when calling hours start if later) and the same time tomorrow. One that falls outside calling hours
    moves to the next allowed time (next_calling_time); None when there is none."""
    zone = zone_info(zone_keys(call_zones)[0]) or dt.timezone.utc
    local_now = now.astimezone(zone)
    tomorrow = local_now.date() + dt.timedelta(days=1)
    wanted = {
        "in_an_hour": _ceil_minutes(now + dt.timedelta(hours=1), 5),
        "tomorrow_morning": dt.datetime.combine(tomorrow, max(start, MORNING), tzinfo=zone),
        "same_time_tomorrow": dt.datetime.combine(tomorrow, local_now.time().replace(second=0, microsecond=0),
                                                  tzinfo=zone),
    }
    presets: dict[str, dt.datetime | None] = {}
    for key, moment in wanted.items():
        allowed = next_calling_time(call_zones=call_zones, at=moment, start=start, end=end)
        presets[key] = allowed.astimezone(zone).replace(tzinfo=None) if allowed else None
    return presets
