import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from metrics.services.periods import months_between
from metrics.services.snapshots import DEFAULT_MONTHS, metrics_refresh, recent_months


class Command(BaseCommand):
    help = "Recompute the KPI snapshots (the same service as the nightly task), synchronously."

    def add_arguments(self, parser):
        parser.add_argument("--start", help="YYYY-MM-DD: the first month to refresh is the one containing it")
        parser.add_argument("--end", help="YYYY-MM-DD, exclusive")
        parser.add_argument("--months", type=int, default=DEFAULT_MONTHS, help="without --start/--end: this many recent months")

    def handle(self, *args, start=None, end=None, months=DEFAULT_MONTHS, **options):
        if bool(start) != bool(end):
            raise CommandError("Give both --start and --end, or neither.")
        if start:
            try:
                first, last = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
            except ValueError as exc:
                raise CommandError(f"Dates are YYYY-MM-DD: {exc}") from exc
            if last <= first:
                raise CommandError("--end must be after --start.")
            periods = months_between(first, last)
        else:
            periods = recent_months(months=months)
        rows = metrics_refresh(periods=periods)
        self.stdout.write(f"{rows} snapshot rows for {len(periods)} months ({periods[0]} .. {periods[-1]}).")
