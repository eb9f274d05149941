# KPI calculators and snapshots arrive with the metrics issue.
