"""Demo data: realistic synthetic customers, orders, complaints and feedback (see seed_demo)."""

# (username, password, group): printed by `make demo`; demo only, never used in production.
DEMO_LOGINS: list[tuple[str, str, str]] = [
    ("manager", "manager-demo-2026", "Managers"),
    ("agent", "agent-demo-2026", "Agents"),
]
