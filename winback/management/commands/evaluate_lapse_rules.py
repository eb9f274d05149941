import datetime as dt
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from winback.services.rule_evaluation import (
    FORMATS, EvaluationError, TransactionsError, evaluation_table, lapse_rules_evaluate, transactions_read,
)


def _date(value: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise CommandError(f"{option}: {value!r} is not a date (YYYY-MM-DD).") from None


class Command(BaseCommand):
    help = (
        "Backtest the lapse rules (global windows, the rhythm rule, tuned rhythm rules, BG/NBD and MBG/NBD "
        "P(alive), a logistic regression) on a transaction log: which rule flags the customers who really make "
        "no purchase in the holdout? See winback/services/rule_evaluation.py."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--transactions", type=Path, required=True, help="The transaction log.")
        parser.add_argument(
            "--calibration-end", required=True, help="Last day of the calibration part (YYYY-MM-DD, included).",
        )
        parser.add_argument("--holdout-end", required=True, help="Last day of the holdout (YYYY-MM-DD, included).")
        parser.add_argument(
            "--format", default="auto",
            help="cdnow (whitespace: master id, sample id, YYYYMMDD, CDs, dollars), orders (the orders CSV: "
                 "external_id,customer,ordered_at,amount,currency,coupon_code) or auto (default: by the header).",
        )

    def handle(self, *args, transactions: Path, calibration_end: str, holdout_end: str, format: str, **options) -> None:
        if format not in FORMATS:
            raise CommandError(f"Unknown format '{format}': use one of {', '.join(FORMATS)}.")
        calibration = _date(calibration_end, "--calibration-end")
        holdout = _date(holdout_end, "--holdout-end")
        if calibration >= holdout:
            raise CommandError(f"--calibration-end ({calibration}) must be before --holdout-end ({holdout}).")
        try:
            log = transactions_read(path=Path(transactions), format=format)
            evaluation = lapse_rules_evaluate(transactions=log, calibration_end=calibration, holdout_end=holdout)
        except (TransactionsError, EvaluationError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(evaluation_table(evaluation=evaluation))
