from django.core.management.base import BaseCommand, CommandParser

from core.batches import batch_inline_reason
from winback.services.lifecycle import lifecycle_scan


class Command(BaseCommand):
    help = ("Compute lifecycle events, statuses and win-back cases (incremental, or --full to rebuild everything). "
            "The batches run on the Celery workers (the admin's batch runs show the progress); --inline runs "
            "them in this process.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--full", action="store_true", help="Recompute every customer (backfill or rebuild).")
        parser.add_argument("--batch-size", type=int, default=50_000, choices=range(100, 1_000_001), metavar="100..1000000")
        parser.add_argument("--inline", action="store_true", help="Run the batches in this process, not on the workers.")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, full: bool, batch_size: int, inline: bool, no_progress: bool, **options) -> None:
        if not inline and (reason := batch_inline_reason()):
            self.stderr.write(reason)
            inline = True
        result = lifecycle_scan(full=full, batch_size=batch_size, inline=inline,
                                progress=not no_progress and self.stderr.isatty())
        self.stdout.write(result.summary())
