from django.dispatch import Signal

# Sent after a lifecycle scan committed, with full=True|False: events changed, so figures built on them
# (the KPI snapshots) are stale. winback knows no listener.
lifecycle_scanned = Signal()

# Sent inside the transaction that made a new dormancy policy version (policy=...): every lifecycle must be
# rebuilt with it.
policy_changed = Signal()
