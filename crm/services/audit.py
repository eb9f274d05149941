"""Audit rows: every create, update and cancel of a crm record says who, when and what changed."""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import models
from django.utils import timezone

from crm.models import AuditEntry, Customer


@dataclass(frozen=True)
class Actor:
    """The user behind a change, or a label for changes no user made (an import, the demo seeder)."""

    user: AbstractBaseUser | None
    label: str

    @classmethod
    def of(cls, user: AbstractBaseUser | None, *, via: str = "") -> "Actor":
        if user is None or not user.is_authenticated:
            return cls(user=None, label=via or "system")
        return cls(user=user, label=f"{user.get_username()}{' via ' + via if via else ''}"[:150])


SYSTEM = Actor(user=None, label="system")


def jsonable(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, models.Model):
        return value.pk
    return value


def fields_snapshot(instance: models.Model, fields: list[str]) -> dict[str, Any]:
    return {f: jsonable(getattr(instance, f)) for f in fields}


def audit_record(
    *,
    actor: Actor,
    action: str,
    instance: models.Model,
    changes: dict[str, Any],
    customer: Customer | None,
) -> AuditEntry:
    return AuditEntry.objects.create(
        at=timezone.now(),
        actor=actor.user,
        actor_label=actor.label,
        action=action,
        entity=instance._meta.label_lower,
        entity_id=instance.pk,
        customer=customer,
        changes=changes,
    )


def audit_bulk_create(*, actor: Actor, instances: list[models.Model], fields: list[str]) -> None:
    """The create rows of new records of one model."""
    if not instances:
        return
    audit_bulk(actor=actor, action=AuditEntry.Action.CREATE, entity=instances[0]._meta.label_lower, rows=[
        (obj.pk, obj.pk if isinstance(obj, Customer) else getattr(obj, "customer_id", None),
         fields_snapshot(obj, fields)) for obj in instances])


def audit_bulk(*, actor: Actor, action: str, entity: str, rows: list[tuple[int, int | None, dict[str, Any]]]) -> None:
    """One audit row per (entity id, customer id, changes), in one INSERT per 2,000: for set-based writes."""
    now = timezone.now()
    AuditEntry.objects.bulk_create(
        [AuditEntry(at=now, actor=actor.user, actor_label=actor.label, action=action, entity=entity,
                    entity_id=entity_id, customer_id=customer_id, changes=changes)
         for entity_id, customer_id, changes in rows],
        batch_size=2000,
    )


def apply_changes(instance: models.Model, data: dict[str, Any]) -> dict[str, list[Any]]:
    """Set the fields that differ; return {field: [old, new]} for the audit row."""
    changes: dict[str, list[Any]] = {}
    for field, new in data.items():
        old = getattr(instance, field)
        if old != new:
            changes[field] = [jsonable(old), jsonable(new)]
            setattr(instance, field, new)
    return changes
