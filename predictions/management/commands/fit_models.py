import datetime as dt

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from core.bounds import EARLIEST_BUSINESS_DATETIME, latest_business_datetime
from predictions.services.fitting import models_fit


def as_of_argument(value: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"--as-of '{value}' is not an ISO 8601 date or date-time (e.g. 2026-09-30T00:00).") from exc
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed)
    if not EARLIEST_BUSINESS_DATETIME <= parsed <= latest_business_datetime():
        raise CommandError(f"--as-of {value} is outside {EARLIEST_BUSINESS_DATETIME:%Y-%m-%d} .. a year from now.")
    return parsed


class Command(BaseCommand):
    help = ("Fit BG/NBD, MBG/NBD and Gamma-Gamma on the order history and rescore every customer "
            "(docs/metrics.md section 7). Every attempt is kept, usable or not, with the reason.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--as-of", help="Fit on the orders before this instant and score as of it "
                                            "(ISO 8601; business time zone when no offset is given). Default: now.")

    def handle(self, *args, as_of: str | None, **options) -> None:
        report = models_fit(as_of=as_of_argument(as_of) if as_of else None, trigger="command")
        for fit in report.fits:
            params = ", ".join(f"{k}={v:.4g}" for k, v in fit.params.items()) or "-"
            ll = f"{fit.log_likelihood:.2f}" if fit.log_likelihood is not None else "-"
            state = "usable" if fit.usable else f"NOT USABLE: {fit.reason}"
            self.stdout.write(f"{fit.model:<12} {params:<50} LL {ll:<12} {state}")
        for step, seconds in report.seconds.items():
            self.stdout.write(f"  {step}: {seconds:.2f} s")
        self.stdout.write(f"{report.scored} customers scored as of {report.as_of.isoformat()}")
