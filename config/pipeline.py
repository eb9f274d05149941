"""What follows what: the whole pipeline, read in one place.

Events are signals sent by the app that owns the fact (an app never knows its listeners); this module, at
the top of the import graph, connects each to what follows it. Every follow-up is a task enqueued after
the commit, best effort (core/task_base.py); the beat schedule (config/schedule.py) sweeps up anything a
refused enqueue left, so the pipeline loses nothing when the broker is down.

    order or cancellation recorded   crm.signals.history_changed
      -> customer lifecycle refresh  winback.receivers.lifecycle_refresh_after_history_change
         (events, status, case sync: opened, won, closed; winback.services.lifecycle)
    lifecycle scanned or refreshed   winback.signals.lifecycle_scanned
      -> KPI snapshot refresh        metrics.tasks.refresh_after_scan (the months the change reached)
    dormancy policy changed          winback.signals.policy_changed
      -> full lifecycle rebuild      winback.receivers.lifecycle_rebuild_after_policy_change
"""

from django.dispatch import Signal

from crm.signals import history_changed
from metrics.tasks import refresh_after_scan
from winback.receivers import lifecycle_rebuild_after_policy_change, lifecycle_refresh_after_history_change
from winback.signals import lifecycle_scanned, policy_changed

PIPELINE: tuple[tuple[Signal, object], ...] = (
    (history_changed, lifecycle_refresh_after_history_change),
    (lifecycle_scanned, refresh_after_scan),
    (policy_changed, lifecycle_rebuild_after_policy_change),
)


def pipeline_connect() -> None:
    for signal, receiver in PIPELINE:
        signal.connect(receiver, dispatch_uid=f"pipeline.{receiver.__module__}.{receiver.__qualname__}")
