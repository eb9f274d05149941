"""Which of a cadence's settings each trigger reads: the admin form shows only those.

The materialiser (materialize.py) is where they are read: the milestone trigger celebrates the order
numbers in ``milestones``, the check-in trigger recurs every ``interval_days``; every other trigger reads
neither. The audience fields (min_orders, min_total_spent, locales) apply to every trigger.
"""

from touchpoints.models import Cadence

Trigger = Cadence.Trigger
TRIGGER_FIELDS: dict[str, tuple[str, ...]] = {
    Trigger.MILESTONE: ("milestones",),
    Trigger.CHECKIN: ("interval_days",),
}
TRIGGER_SPECIFIC_FIELDS: tuple[str, ...] = tuple(sorted({f for fields in TRIGGER_FIELDS.values() for f in fields}))


def cadence_trigger_fields(*, trigger: str) -> tuple[str, ...]:
    """The trigger-specific settings ``trigger`` reads (none for most)."""
    return TRIGGER_FIELDS.get(trigger, ())


def cadence_fields_not_applicable(*, trigger: str) -> tuple[str, ...]:
    applicable = cadence_trigger_fields(trigger=trigger)
    return tuple(f for f in TRIGGER_SPECIFIC_FIELDS if f not in applicable)
