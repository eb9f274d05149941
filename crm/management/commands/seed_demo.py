import argparse
import datetime as dt
import sys
import time

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from crm.services.demo_data import demo_seed
from crm.services.errors import ConflictError


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{value}' is not a date in YYYY-MM-DD form.") from None


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return number


def _non_negative(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return number


class Command(BaseCommand):
    help = ("Create the demo logins and realistic synthetic customers, orders, complaints, feedback and contacts. "
            "The same --seed and --until always give the same data.")

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--customers", type=_non_negative, default=5000)
        parser.add_argument("--years", type=_positive, default=3, help="Length of the order history.")
        parser.add_argument(
            "--until", type=_date, default=None,
            help="The 'today' of the data set (YYYY-MM-DD, business time zone; default today). "
                 "Everything happens before this date.",
        )
        parser.add_argument("--if-empty", action="store_true", help="Do nothing when any customer exists.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bars.")

    def handle(self, *, seed: int, customers: int, years: int, until: dt.date | None, if_empty: bool,
               no_progress: bool, **options):
        until = until or timezone.localdate()
        started = time.monotonic()
        try:
            result = demo_seed(
                seed=seed, customers=customers, years=years, until=until, if_empty=if_empty,
                progress=not no_progress and sys.stderr.isatty(),
            )
        except ConflictError as exc:
            raise CommandError(exc.message) from exc
        if result.skipped:
            self.stdout.write(f"{result.existing_customers} customers already exist: --if-empty, nothing seeded.")
            return
        self.stdout.write(self.style.SUCCESS(
            f"Seeded {result.customers} customers, {result.orders} orders, {result.complaints} complaints, "
            f"{result.feedback} feedback, {result.contacts} contacts, {result.cancelled} cancelled "
            f"(seed {seed}, until {until}, {years} years) in {time.monotonic() - started:.1f}s; "
            f"logins: {', '.join(result.logins)}."
        ))
