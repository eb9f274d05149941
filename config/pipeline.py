"""What follows what: the whole pipeline, read in one place.

Events are signals sent by the app that owns the fact (an app never knows its listeners); this module, at
the top of the import graph, connects each to what follows it. Every follow-up is a task enqueued after
the commit, best effort (core/task_base.py); the beat schedule (config/schedule.py) sweeps up anything a
refused enqueue left, so the pipeline loses nothing when the broker is down.

    order or cancellation recorded   crm.signals.history_changed
      -> customer lifecycle refresh  winback.receivers.lifecycle_refresh_after_history_change
         (events, status, case sync: opened, won, closed; winback.services.lifecycle)
      -> their predictions rescored  predictions.receivers.predictions_refresh_after_history_change
    lifecycle scanned or refreshed   winback.signals.lifecycle_scanned
      -> KPI snapshot refresh        metrics.tasks.refresh_after_scan (the months the change reached)
    predictions refitted or rescored predictions.signals.predictions_refreshed
      -> open cases' priorities      winback.receivers.priorities_refresh_after_predictions
         (after a whole refit, also the lapse rules' backtest on our orders: winback.tune_lapse_rule)
    dormancy policy changed          winback.signals.policy_changed
      -> full lifecycle rebuild      winback.receivers.lifecycle_rebuild_after_policy_change

Personal-data requests (crm.services.privacy) ask every app for what it holds, synchronously (PERSONAL_DATA):
an export collects the sections, an erasure runs inside its own transaction (an error in any app rolls it all
back).

    customer export                  crm.signals.customer_exporting
      -> cases, events, coupons      winback.services.privacy.winback_export
      -> outbox rows                 touchpoints.services.privacy.touchpoints_export
      -> predictions                 predictions.services.privacy.predictions_export
    customer erasure                 crm.signals.customer_erasing
      -> open cases closed, notes    winback.services.privacy.winback_erase
      -> pending sends cancelled     touchpoints.services.privacy.touchpoints_erase
      -> predictions deleted         predictions.services.privacy.predictions_erase
"""

from django.dispatch import Signal

from crm.signals import customer_erasing, customer_exporting, history_changed
from metrics.tasks import refresh_after_scan
from predictions.receivers import predictions_refresh_after_history_change
from predictions.services.privacy import predictions_erase, predictions_export
from touchpoints.services.privacy import touchpoints_erase, touchpoints_export
from predictions.signals import predictions_refreshed
from winback.receivers import (
    lifecycle_rebuild_after_policy_change, lifecycle_refresh_after_history_change, priorities_refresh_after_predictions,
)
from winback.services.privacy import winback_erase, winback_export
from winback.signals import lifecycle_scanned, policy_changed

PIPELINE: tuple[tuple[Signal, object], ...] = (
    (history_changed, lifecycle_refresh_after_history_change),
    (history_changed, predictions_refresh_after_history_change),
    (lifecycle_scanned, refresh_after_scan),
    (policy_changed, lifecycle_rebuild_after_policy_change),
    (predictions_refreshed, priorities_refresh_after_predictions),
)

# Not follow-ups after a commit: each app's part of one personal-data request, run inside it.
PERSONAL_DATA: tuple[tuple[Signal, object], ...] = (
    (customer_exporting, winback_export),
    (customer_exporting, touchpoints_export),
    (customer_exporting, predictions_export),
    (customer_erasing, winback_erase),
    (customer_erasing, touchpoints_erase),
    (customer_erasing, predictions_erase),
)


def pipeline_connect() -> None:
    for signal, receiver in PIPELINE + PERSONAL_DATA:
        signal.connect(receiver, dispatch_uid=f"pipeline.{receiver.__module__}.{receiver.__qualname__}")
