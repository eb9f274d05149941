import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from core.batches import BatchRunFailed, batch_inline_reason, batch_run_wait
from metrics.services.periods import months_between
from metrics.services.snapshots import DEFAULT_MONTHS, DEFAULT_PARTS, metrics_refresh_start, recent_months


class Command(BaseCommand):
    help = ("Recompute the KPI snapshots (the same service as the nightly task). The customers are split into "
            "batches that run on the Celery workers (the admin's batch runs show the progress), and the command "
            "waits for them; --inline runs them in this process.")

    def add_arguments(self, parser):
        parser.add_argument("--start", help="YYYY-MM-DD: the first month to refresh is the one containing it")
        parser.add_argument("--end", help="YYYY-MM-DD, exclusive")
        parser.add_argument("--months", type=int, default=DEFAULT_MONTHS, help="without --start/--end: this many recent months")
        parser.add_argument("--parts", type=int, default=DEFAULT_PARTS, choices=range(1, 257), metavar="1..256",
                            help="batches of customers (each reads its customers' events and orders once); the order"
                                 " lines and the program's tables are a batch each besides")
        parser.add_argument("--inline", action="store_true", help="Run the batches in this process, not on the workers.")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, start=None, end=None, months=DEFAULT_MONTHS, parts=DEFAULT_PARTS, inline=False,
               no_progress=False, **options):
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
            if months < 1:
                raise CommandError("--months must be at least 1.")
            periods = recent_months(months=months)
        progress = not no_progress and self.stderr.isatty()
        if not inline and (reason := batch_inline_reason()):
            self.stderr.write(reason)
            inline = True
        try:
            run = metrics_refresh_start(periods=periods, parts=parts, inline=inline, progress=progress)
            if not inline:
                run = batch_run_wait(run=run, progress=progress)
        except BatchRunFailed as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"{run.result.get('rows', 0)} snapshot rows for {len(periods)} months ({periods[0]} .. {periods[-1]})"
                          f" in {run.parts_total} batches{' inline' if inline else ' on the workers'}.")
