import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from config.backup import BackupError, Database, restore

TRUE = ("1", "true", "yes", "on")


class Command(BaseCommand):
    help = ("Restore a db_backup file into RESTORE_DATABASE_URL (default: DATABASE_URL), creating the database when"
            " it is missing and refusing one that has tables unless --force (FORCE=1); then `migrate --check`."
            " The target comes from the environment only, so its password never shows on a command line.")

    def add_arguments(self, parser):
        parser.add_argument("--file", default=os.environ.get("BACKUP_FILE") or None,
                            help="the backup to restore (default: $BACKUP_FILE)")
        parser.add_argument("--force", action="store_true", default=os.environ.get("FORCE", "").lower() in TRUE,
                            help="replace the contents of a database that is not empty (default: $FORCE)")

    def handle(self, *, file: str | None, force: bool, **options):
        if not file:
            raise CommandError("Which backup? Give BACKUP_FILE=var/backups/... (or --file).")
        url = os.environ.get("RESTORE_DATABASE_URL") or None
        db = Database.from_url(url) if url else Database(dict(connection.settings_dict))
        try:
            result = restore(path=Path(file), db=db, url=url, force=force)
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        before = "created" if result.created else f"replaced {result.replaced} tables" if result.replaced else "empty"
        self.stdout.write(f"Restored {file} into {db.label} ({before}): {result.tables} tables;"
                          f" migrate --check: {result.check}")
