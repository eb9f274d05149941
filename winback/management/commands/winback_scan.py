from django.core.management.base import BaseCommand, CommandParser

from winback.services.lifecycle import lifecycle_scan


class Command(BaseCommand):
    help = "Compute lifecycle events, statuses and win-back cases (incremental, or --full to rebuild everything)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--full", action="store_true", help="Recompute every customer (backfill or rebuild).")
        parser.add_argument("--batch-size", type=int, default=50_000)
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, full: bool, batch_size: int, no_progress: bool, **options) -> None:
        result = lifecycle_scan(full=full, batch_size=batch_size, progress=not no_progress and self.stderr.isatty())
        self.stdout.write(result.summary())
