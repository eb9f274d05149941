from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from crm.services.audit import Actor
from crm.services.imports import KINDS, ImportFileError, csv_import


class Command(BaseCommand):
    help = (
        "Import customers, orders, complaints or feedback from a CSV file whose columns are named like the "
        "API's fields. Rejected rows go to an error report; exit status 1 when any row was rejected."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("kind", choices=sorted(KINDS))
        parser.add_argument("file", type=Path)
        parser.add_argument("--report", type=Path, help="Error report path (default: FILE.errors.csv).")
        parser.add_argument("--user", help="Username recorded as the author in the audit trail.")
        parser.add_argument("--batch-size", type=int, default=5000)
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, kind: str, file: Path, report: Path | None, user: str | None, batch_size: int, no_progress: bool, **options) -> None:
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
        try:
            result = csv_import(
                kind=kind, path=file, actor=actor, report_path=report, batch_size=batch_size,
                progress=not no_progress and self.stderr.isatty(),
            )
        except ImportFileError as exc:
            raise CommandError(f"{file}: {exc} Nothing was imported.") from exc
        self.stdout.write(result.summary())
        if result.rejected:
            raise CommandError(f"{result.rejected} row(s) rejected; see {report} (row, column, reason).")
        report.unlink(missing_ok=True)
