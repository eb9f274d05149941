# Lifecycle events, cases and touchpoints arrive with the lifecycle and queue issues.
