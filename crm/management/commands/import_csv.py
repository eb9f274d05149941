from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.batches import BatchRunFailed, batch_inline_reason
from core.dialect import is_postgresql
from crm.services.audit import Actor
from crm.services.imports import KINDS, ImportFileError, csv_import


class Command(BaseCommand):
    help = (
        "Import customers, orders, complaints or feedback from a CSV file whose columns are named like the "
        "API's fields. Rejected rows go to an error report; exit status 1 when any row was rejected. Orders run "
        "as a batch run on the Celery workers (a row per run in the admin, a progress bar here), or in this "
        "process with --inline (always on the embedded SQLite database, and when no worker answers)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("kind", choices=sorted(KINDS))
        parser.add_argument("file", type=Path)
        parser.add_argument("--report", type=Path, help="Error report path (default: FILE.errors.csv).")
        parser.add_argument("--user", help="Username recorded as the author in the audit trail.")
        parser.add_argument("--batch-size", type=int, default=5000,
                            help="Rows per batch (orders: about the rows of one part of the run).")
        parser.add_argument("--inline", action="store_true",
                            help="Orders: run the batches in this process instead of on the workers.")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, kind: str, file: Path, report: Path | None, user: str | None, batch_size: int,
               inline: bool, no_progress: bool, **options) -> None:
        if not file.is_file():
            raise CommandError(f"No such file: {file}")
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        author = None
        if user:
            author = get_user_model().objects.filter(username=user).first()
            if author is None:
                raise CommandError(f"No user named '{user}'.")
        actor = Actor.of(author, via=f"import_csv {file.name}") if author else Actor(None, f"import_csv {file.name}"[:150])
        report = report or file.with_name(file.name + ".errors.csv")
        if kind == "orders" and not inline and (reason := batch_inline_reason()):
            if is_postgresql():
                self.stderr.write(reason)
            inline = True
        try:
            result = csv_import(
                kind=kind, path=file, actor=actor, report_path=report, batch_size=batch_size, inline=inline,
                progress=not no_progress and self.stderr.isatty(),
            )
        except ImportFileError as exc:
            raise CommandError(f"{file}: {exc} Nothing was imported.") from exc
        except BatchRunFailed as exc:
            raise CommandError(f"{file}: {exc}. The orders of the batches done before are in; importing the file "
                               "again adds the rest.") from exc
        self.stdout.write(result.summary())
        if result.rejected:
            raise CommandError(f"{result.rejected} row(s) rejected; see {report} (row, column, reason).")
        report.unlink(missing_ok=True)

