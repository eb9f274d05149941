"""crm's part of /health/ (core.selectors, settings.HEALTH_CHECKS)."""

import datetime as dt
from typing import Any

from crm.services.suppression import suppression_unknown_keys


def suppression_health(*, now: dt.datetime) -> tuple[str, bool, dict[str, Any]]:
    """Entries hashed with a key no longer configured never match again: the people they stand for could be
    contacted after a re-import. It happens when SUPPRESSION_HASH_KEY (or, with the default key, SECRET_KEY)
    was rotated without keeping the old key in SUPPRESSION_HASH_OLD_KEYS (or SECRET_KEY_FALLBACKS)."""
    unknown = suppression_unknown_keys()
    return "suppression_list", not unknown, {
        "status": "ok" if not unknown else "old key missing", "entries_with_unknown_key": unknown}
