from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from winback.services.rule_tuning import DEFAULT_HOLDOUT_DAYS, lapse_rule_tune


def _f(value: float | None) -> str:
    return "  n/a" if value is None else f"{value:.3f}"


class Command(BaseCommand):
    help = ("Backtest the candidate lapse rules on our own orders (calibrate on the past, score on the last "
            "--holdout-days) and keep the result, shown in the admin beside the dormancy policy, where a manager "
            "adopts one. See winback/services/rule_tuning.py.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--holdout-days", type=int, default=DEFAULT_HOLDOUT_DAYS,
                            help=f"Days after the calibration end that judge the flags (30..730, default {DEFAULT_HOLDOUT_DAYS}).")

    def handle(self, *args, holdout_days: int, **options) -> None:
        try:
            tuning = lapse_rule_tune(holdout_days=holdout_days)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        if tuning.reason:
            raise CommandError(tuning.reason)
        self.stdout.write(f"Calibration to {tuning.calibration_end}, holdout {tuning.holdout_days} days, "
                          f"{tuning.customers} customers. Positive = no purchase in the holdout.")
        self.stdout.write(f"{'rule':<52} {'flagged':>8} {'prec':>6} {'recall':>6} {'F1':>6} | {'repeat F1':>9} | {'today':>7}")
        for row in tuning.candidates:
            a, r = row["all"], row["repeat"]
            self.stdout.write(f"{row['label'][:52]:<52} {a['flagged']:>8} {_f(a['precision']):>6} {_f(a['recall']):>6} "
                              f"{_f(a['f1']):>6} | {_f(r['f1']):>9} | {row['flagged_today']:>7}")
        best = next(r for r in tuning.candidates if r["key"] == tuning.best_key)
        verdict = "better than the current rule" if tuning.better else "not better than the current rule by the margin"
        self.stdout.write(f"Best: {best['label']} ({verdict}). Adopt it in the admin: Dormancy policies.")
